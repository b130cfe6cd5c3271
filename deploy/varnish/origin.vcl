# Where the compose cluster's Varnish (profile `cdn`) finds the origin: both load balancers'
# plain-HTTP origin listeners (SEALCAST_LB_ORIGIN_LISTEN=0.0.0.0:8081 in docker-compose.yml),
# each probed on /healthz, taken in turn while healthy. Included by sealcast.vcl, which uses
# the director `origin`; the tests and bench/llhls-cdn.sh write a file of this name of their
# own with their load balancer in it.
#
# The acl `purgers`: who may BAN (sealcast.vcl): the cluster's nodes on the frontend
# network, which serve the API and send a BAN when a stream turns private or a recording is
# deleted (SEALCAST_CACHE_PURGE_URL). Not the network's gateway, where viewers reaching a
# published port may appear to come from.
#
# Each balancer, not the floating address keepalived moves: Varnish resolves a backend's
# name once, when the VCL is loaded, and probes each balancer itself, so it needs no
# failover address.

acl purgers {
    "10.237.240.0"/24;
    ! "10.237.240.1";
    "127.0.0.1";
}

probe lb_alive {
    .url = "/healthz";
    .interval = 2s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
}

backend lb1 {
    .host = "lb1";
    .port = "8081";
    .probe = lb_alive;
    .connect_timeout = 1s;
    # Above the longest hold of a blocking request at the edge (three target durations).
    .first_byte_timeout = 15s;
    .between_bytes_timeout = 10s;
}

backend lb2 {
    .host = "lb2";
    .port = "8081";
    .probe = lb_alive;
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;
    .between_bytes_timeout = 10s;
}

sub vcl_init {
    new origin = directors.round_robin();
    origin.add_backend(lb1);
    origin.add_backend(lb2);
}
