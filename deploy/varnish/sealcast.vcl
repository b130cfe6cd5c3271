# sealcast's cache tier: Varnish 7.1 (Debian 12's package) between viewers and the load
# balancers (docs/deployment.md, "A cache in front"; docs/architecture.md, "Caching").
#
# It keeps one copy of every part, segment and playlist answer and serves every viewer from
# it. What makes that work for LL-HLS, where each viewer holds a blocking playlist request
# and a request for the preload-hinted part open at all times:
#
#   - A blocking reload (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) and a hinted part are cached
#     objects under their full URL, never passed: every identical request that arrives while
#     the first one is held at the origin waits on Varnish's waiting list for that one fetch
#     (request coalescing), so the origin sees one request per URL, not one per viewer. The
#     nodes say how long each answer may be kept (`Cache-Control`); this file follows them.
#   - No stale playlist: playlists have no grace, so an expired one is never served while a
#     new one is fetched (Varnish's default grace is 10 s).
#   - No stickiness: the load balancer's sticky cookie is dropped both ways. Behind a cache it
#     is not needed: every edge serves the same bytes for a part, a segment and an init
#     segment (signed, identical by design), and a playlist or a part that one edge has a few
#     milliseconds before another is held by the later one until it has it (a blocking
#     reload, a hinted part), so whichever edge the load balancer picks gives a correct answer.
#
# The load balancers are reached over plain HTTP on their origin listener
# (`SEALCAST_LB_ORIGIN_LISTEN`): Varnish does not speak TLS to a backend. Where they are is
# in origin.vcl, included below and found on `vcl_path` (compose mounts
# deploy/varnish/origin.vcl; the tests and bench/llhls-cdn.sh write their own), so that this
# file is the same everywhere. origin.vcl defines the director `origin` and the acl
# `purgers` (the cluster's nodes, which serve the API).
#
# The viewer's address: Varnish appends the address it saw (`client.ip`) to
# X-Forwarded-For before vcl_recv, and nothing here touches that header. A load balancer
# that names this cache in SEALCAST_LB_TRUSTED_CACHE takes that last hop as the client,
# for its per-client budgets, the wrong-key backoff and client-bound playback tokens.
#
# Privacy and deletion (issue 45): what a stream served while public must not outlive its
# turning private, nor a recording its deletion. Every object is kept two minutes at most,
# whatever the origin allows (the nodes say so too, with `s-maxage`); and the API sends
# `BAN /live/NAME/`, `BAN /vod/NAME/` or `BAN /vod/NAME/ID/` (SEALCAST_CACHE_PURGE_URL) the
# moment it makes a stream private or deletes a recording, which drops every stored
# answer under that prefix at once. BAN is taken from the addresses of `purgers` only.
#
# Run: varnishd -F -a :6081 -f /etc/varnish/sealcast.vcl -p vcl_path=/etc/varnish \
#        -s malloc,256m -p feature=+http2
vcl 4.1;

import std;
import directors;

include "origin.vcl";

sub vcl_recv {
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        # One stream's tree, or one recording's: nothing else may be banned.
        if (req.url !~ "^/(live|vod)/[A-Za-z0-9][A-Za-z0-9_-]*/([0-9a-f]{16}/)?$") {
            return (synth(400, "Bad Request"));
        }
        # On a header of the stored object, not on req.url: the ban lurker can then drop
        # the objects in the background, instead of each being tested at its next lookup.
        ban("obj.http.x-sealcast-url ~ ^" + req.url);
        return (synth(200, "Banned"));
    }
    set req.backend_hint = origin.backend();
    # Lower-case Host, 400 without one (the built-in rules, which the returns below skip).
    call vcl_req_host;
    if (req.method != "GET" && req.method != "HEAD") {
        # WHIP offers, the admin API's writes, CORS preflights: for the origin to answer.
        return (pass);
    }
    # Answers for one caller or of the moment: the admin API (keys in headers), WHIP, health,
    # readiness, metrics. (The load balancer refuses /internal/ and /metrics anyway.)
    if (req.url ~ "^/(api|whip|internal)(/|\?|$)" ||
        req.url ~ "^/(healthz|readyz|metrics)(\?|$)") {
        return (pass);
    }
    # One spelling per URL: the query's parameters in one order. Nothing is taken out: a
    # private stream's playback token (`?token=`) stays in the URL and so in the cache key,
    # so a cached answer is only ever served to a request that carries the same token.
    set req.url = std.querysort(req.url);
    # What is cached is the same for everyone; the sticky cookie only says which edge a
    # viewer had (see the top of this file), and with a Cookie the built-in rules would pass.
    unset req.http.Cookie;
    return (hash);
}

sub vcl_hash {
    # The URL with its query, and nothing else: `index.m3u8?_HLS_msn=41&_HLS_part=2` is one
    # object that every viewer asking for it shares. Not the Host: a node answers the same
    # under every name (playlists name everything by relative URI), so viewers who reach
    # the cache under different names share its copies.
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_response {
    if (bereq.uncacheable) {
        # Passed requests: as the origin answered.
        return (deliver);
    }
    # The sticky cookie the load balancer sets on a viewer's first answer: stored objects
    # are shared, so no viewer's cookie may be stored with one.
    unset beresp.http.Set-Cookie;
    # What a BAN matches (removed again before delivery).
    set beresp.http.x-sealcast-url = bereq.url;

    # A blocking request the origin could not satisfy in three target durations (503): the
    # node says how long the answer may be kept (`max-age=1`), so that every request held on
    # that URL gets it at once and the next try reaches the origin a second later, not once
    # per viewer. Varnish keeps no 503 by itself.
    if (beresp.status == 503 && bereq.url ~ "^/live/" &&
        beresp.http.Cache-Control ~ "max-age=[0-9]+") {
        set beresp.ttl = std.duration(
            regsub(beresp.http.Cache-Control, "^.*max-age=([0-9]+).*$", "\1s"), 0s);
    }

    # Whatever the origin says not to store (a 404 for a part that may yet exist, errors,
    # pages that must be revalidated): not stored, and marked hit-for-miss for one second
    # instead of the built-in two minutes, so that the URL is coalesced again as soon as it
    # can be cached (a later cacheable answer replaces the mark).
    if (beresp.ttl <= 0s ||
        beresp.http.Cache-Control ~ "(?i)(no-store|no-cache|private)" ||
        beresp.http.Vary == "*") {
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }

    if (bereq.url ~ "\.m3u8(\?|$)" || bereq.url ~ "^/live/.*/init\.mp4(\.sig)?(\?|$)") {
        # Playlists change (a live one every part), and a live init segment can change under
        # its URL when a publisher reconnects with other settings: never served past its
        # max-age (no grace). Kept a little longer so that the next fetch is conditional
        # (If-None-Match: a 304 without a body when it has not changed).
        set beresp.grace = 0s;
        set beresp.keep = 10s;
    } elsif (beresp.ttl > 120s) {
        # Parts and segments are immutable (the origin allows browsers a year), but nobody
        # asks for one of a live window minutes later, and a stream can turn private or a
        # recording be deleted: two minutes at most for everything, whatever a node or a
        # CDN rule in between says. A BAN drops them sooner.
        set beresp.ttl = 120s;
    }
    return (deliver);
}

sub vcl_deliver {
    unset resp.http.x-sealcast-url;
    # For operators and the tests: whether this answer came from the cache.
    if (obj.uncacheable) {
        set resp.http.x-sealcast-cache = "pass";
    } elsif (obj.hits > 0) {
        set resp.http.x-sealcast-cache = "hit";
    } else {
        set resp.http.x-sealcast-cache = "miss";
    }
}
