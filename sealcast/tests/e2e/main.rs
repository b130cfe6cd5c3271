//! End to end: the real `sealcast up` process, the real `ffmpeg` CLI as publisher, and
//! `ffprobe` and headless Chromium reading what comes out. One binary, one cluster,
//! started once by the first test that needs it ([`fixture`]); one named test per thing
//! that can break, so a failure says what broke.
//!
//! A harness of its own (`harness = false`, libtest-mimic: the same command line and
//! output as libtest) because the cluster must also be *stopped* once, after the last
//! test — it must exit cleanly on SIGTERM and its log must hold no secret — which libtest
//! has no hook for. That check is the last test, `cluster_stops_cleanly_and_logs_no_secret`.
//!
//! Heavy publishes (720p30 through the whole ladder, the browser, the compose cluster in
//! Docker)
//! run one after another — two of them at once would not fit in the two cores CI
//! machines have. Light ones (240p, source rung only) run beside them, so "other streams
//! keep going" is checked under real load. Tests run on three threads unless
//! `--test-threads` says otherwise, in the order listed below.

mod cdn;
mod cluster;
mod compose_cluster;
mod edges;
mod fixture;
mod ingest_protocols;
mod interop;
mod kubernetes_postgres;
mod ladder;
mod lb;
mod liveness;
mod llhls;
mod moq;
mod pages;
mod private;
mod publishers;
mod srt_door;
mod thumbnails;
mod timeshift;
mod verify;
mod web;
mod whip;

use std::process::ExitCode;
use std::sync::Arc;

use fixture::{Fixture, Load};
use libtest_mimic::{Arguments, Trial};

use crate::cluster::Cluster;

/// The last test: the cluster stops cleanly and its log holds no secret.
const STOP: &str = "cluster_stops_cleanly_and_logs_no_secret";

/// A test against the cluster.
type ClusterTest = for<'a> fn(
    &'a Fixture,
    &'a Cluster,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>,
>;

/// A test on the cluster: started (once) before it runs.
fn on_cluster(fixture: &Arc<Fixture>, name: &str, load: Load, test: ClusterTest) -> Trial {
    let fixture = Arc::clone(fixture);
    let name = name.to_owned();
    Trial::test(name.clone(), move || {
        fixture
            .run(&name, load, async {
                let cluster = fixture.cluster().await?;
                test(&fixture, &cluster).await
            })
            .map_err(|e| format!("{e:#}").into())
    })
}

/// A test that starts what it needs itself (no shared cluster), on the fixture's runtime.
fn on_its_own<F, T>(fixture: &Arc<Fixture>, name: &'static str, load: Load, test: F) -> Trial
where
    F: FnOnce() -> T + Send + 'static,
    T: std::future::Future<Output = anyhow::Result<()>>,
{
    let fixture = Arc::clone(fixture);
    Trial::test(name, move || {
        fixture
            .run(name, load, test())
            .map_err(|e| format!("{e:#}").into())
    })
}

/// The tests, in the order they are handed to the threads: heavy ones spread out so that
/// light ones fill the time between them.
fn trials(fixture: &Arc<Fixture>) -> Vec<Trial> {
    use Load::{Heavy, Light};
    vec![
        on_cluster(
            fixture,
            "ladder_from_ffmpeg_720p_is_aligned_identical_and_recorded",
            Heavy,
            |_, c| Box::pin(ladder::ffmpeg_720p_ladder(c)),
        ),
        on_cluster(
            fixture,
            "push_api_refuses_bad_tokens_unknown_streams_big_bodies_and_dot_dot",
            Light,
            |_, c| Box::pin(edges::check_push_refusals(c)),
        ),
        on_cluster(
            fixture,
            "bad_publishers_are_refused_and_a_healthy_stream_keeps_going",
            Light,
            |f, c| {
                Box::pin(async move { publishers::bad_inputs(c, f.live_stream(c).await?).await })
            },
        ),
        on_cluster(
            fixture,
            "nested_amf_commands_close_their_connection_and_nothing_else",
            Light,
            |f, c| {
                Box::pin(async move { publishers::nested_amf(c, f.live_stream(c).await?).await })
            },
        ),
        on_cluster(
            fixture,
            "load_balancer_sticky_spread_redirect_and_bad_clients",
            Light,
            |f, c| {
                Box::pin(async move {
                    let live = f.live_stream(c).await?;
                    lb::check_sticky_and_bad_requests(&c.https, &c.http_redirect, &c.ca(), live)
                        .await
                })
            },
        ),
        on_cluster(
            fixture,
            "llhls_through_the_load_balancer_blocks_hints_skips_and_matches",
            Light,
            |f, c| Box::pin(async move { llhls::check_llhls(c, f.live_stream(c).await?).await }),
        ),
        on_cluster(
            fixture,
            "llhls_plays_in_chromium_for_30_s_without_a_stall",
            Heavy,
            |f, c| Box::pin(async move { llhls::check_browser(c, f.live_stream(c).await?).await }),
        ),
        on_cluster(
            fixture,
            "ladder_from_sealcast_source_720p",
            Heavy,
            |_, c| Box::pin(ladder::sealcast_source_ladder(c)),
        ),
        on_cluster(
            fixture,
            "signature_gate_serves_only_verified_segments_and_gaps",
            Light,
            |f, c| Box::pin(async move { edges::check_gate(c, f.live_stream(c).await?).await }),
        ),
        on_cluster(
            fixture,
            "garbage_on_the_broker_is_counted_and_ignored",
            Light,
            |f, c| {
                Box::pin(async move {
                    edges::check_garbage_on_the_broker(c, f.live_stream(c).await?).await
                })
            },
        ),
        on_cluster(
            fixture,
            "forged_presences_get_no_viewers_and_no_pushes",
            Light,
            |f, c| {
                Box::pin(
                    async move { edges::check_forged_presences(c, f.live_stream(c).await?).await },
                )
            },
        ),
        on_cluster(
            fixture,
            "late_killed_and_silent_nodes_slow_nobody",
            Light,
            |f, c| {
                Box::pin(async move {
                    edges::check_late_join_and_failures(c, f.live_stream(c).await?).await
                })
            },
        ),
        on_cluster(
            fixture,
            "thumbnails_are_signed_served_and_shown_live_and_recorded",
            Heavy,
            |_, c| Box::pin(thumbnails::live_and_recorded(c)),
        ),
        on_cluster(
            fixture,
            "api_player_dashboard_and_recording_in_chromium",
            Heavy,
            |_, c| Box::pin(web::check_api_player_and_dashboard(c)),
        ),
        on_cluster(
            fixture,
            "a_live_viewer_goes_back_in_time_and_back_to_live",
            Heavy,
            |_, c| Box::pin(timeshift::check(c)),
        ),
        on_cluster(
            fixture,
            "a_live_viewer_resumes_when_its_publisher_comes_back",
            Heavy,
            |_, c| Box::pin(publishers::viewer_resumes(c)),
        ),
        on_cluster(
            fixture,
            "reconnect_continues_numbering_after_a_discontinuity",
            Light,
            |_, c| Box::pin(publishers::reconnect(c)),
        ),
        on_cluster(fixture, "mp3_audio_comes_out_as_aac", Light, |_, c| {
            Box::pin(publishers::mp3_audio(c))
        }),
        on_cluster(
            fixture,
            "varnish_in_front_serves_200_ll_viewers_with_flat_origin_load",
            Heavy,
            |f, c| {
                Box::pin(
                    async move { cdn::check_varnish_in_front(c, f.live_stream(c).await?).await },
                )
            },
        ),
        on_its_own(
            fixture,
            "varnish_in_front_keeps_client_bound_tokens_and_is_purged_on_privacy",
            Heavy,
            cdn::check_privacy_through_varnish,
        ),
        on_its_own(
            fixture,
            "sealcast_up_runs_a_moq_relay_and_chromium_plays_over_it",
            Light,
            moq::check_up_runs_a_moq_relay,
        ),
        on_its_own(
            fixture,
            "a_private_stream_plays_over_moq_through_a_gated_relay_with_its_grant",
            Light,
            moq::check_private_moq_through_a_gated_relay,
        ),
        on_its_own(
            fixture,
            "moq_through_clustered_moq_relays_and_a_hostile_hop_plays_verified",
            Light,
            moq::check_moq_through_clustered_relays,
        ),
        on_cluster(
            fixture,
            "second_publisher_with_the_same_key_takes_over",
            Light,
            |_, c| Box::pin(publishers::takeover(c)),
        ),
        on_cluster(
            fixture,
            "viewers_refuse_every_alteration_in_chromium_webcrypto_and_library",
            Heavy,
            |f, c| {
                Box::pin(async move {
                    let cases = verify::check_player(c, f.live_stream(c).await?).await?;
                    eprintln!("verify (player): {cases}");
                    Ok(())
                })
            },
        ),
        on_cluster(
            fixture,
            "the_player_plays_on_through_a_proxy_that_alters_one_fragment_in_five",
            Heavy,
            |f, c| {
                Box::pin(async move {
                    let seen =
                        verify::check_player_under_tampering(c, f.live_stream(c).await?).await?;
                    eprintln!("verify (one in five altered): {seen}");
                    Ok(())
                })
            },
        ),
        on_cluster(
            fixture,
            "sealcast_verify_names_every_alteration",
            Light,
            |f, c| {
                Box::pin(async move {
                    let cases = verify::check_command(c, f.live_stream(c).await?).await?;
                    eprintln!("verify (command): {cases}");
                    Ok(())
                })
            },
        ),
        on_cluster(
            fixture,
            "enhanced_rtmp_hevc_from_ffmpeg_9",
            Heavy,
            |_, c| Box::pin(ingest_protocols::ertmp_hevc(c)),
        ),
        on_cluster(fixture, "enhanced_rtmp_av1_from_ffmpeg_9", Heavy, |_, c| {
            Box::pin(ingest_protocols::ertmp_av1(c))
        }),
        on_cluster(fixture, "srt_h264_from_ffmpeg_9", Heavy, |_, c| {
            Box::pin(ingest_protocols::srt_h264(c))
        }),
        on_cluster(fixture, "srt_hevc_from_ffmpeg_9", Heavy, |_, c| {
            Box::pin(ingest_protocols::srt_hevc(c))
        }),
        on_cluster(fixture, "srt_from_debian_ffmpeg_5", Heavy, |_, c| {
            Box::pin(ingest_protocols::srt_debian_ffmpeg(c))
        }),
        on_cluster(
            fixture,
            "wrong_keys_refused_on_every_protocol",
            Light,
            |_, c| Box::pin(ingest_protocols::wrong_keys(c)),
        ),
        on_cluster(
            fixture,
            "malformed_srt_ertmp_and_whip_leave_other_streams_playing",
            Light,
            |f, c| {
                Box::pin(async move {
                    ingest_protocols::malformed_input(c, f.live_stream(c).await?).await
                })
            },
        ),
        on_cluster(
            fixture,
            "srt_killer_datagrams_then_a_publish",
            Light,
            |_, c| Box::pin(srt_door::killer_datagrams_then_a_publish(c)),
        ),
        on_cluster(
            fixture,
            "srt_forged_cookie_gets_no_conclusion",
            Light,
            |_, c| Box::pin(srt_door::forged_cookie_gets_no_conclusion(c)),
        ),
        on_cluster(
            fixture,
            "srt_datagram_flood_memory_returns",
            Heavy,
            |_, _| Box::pin(srt_door::datagram_flood_memory_returns()),
        ),
        on_cluster(
            fixture,
            "interop_matrix_of_publishers_and_players",
            Heavy,
            |_, c| Box::pin(interop::matrix(c)),
        ),
        on_cluster(fixture, "whip_from_ffmpeg_9", Heavy, |_, c| {
            Box::pin(whip::ffmpeg9_ladder(c))
        }),
        on_cluster(fixture, "whip_from_chromium_publish_page", Heavy, |_, c| {
            Box::pin(whip::chromium_publish_page(c))
        }),
        on_cluster(
            fixture,
            "whip_from_chromium_over_ice_tcp_only",
            Heavy,
            |_, c| Box::pin(whip::chromium_over_ice_tcp(c)),
        ),
        on_cluster(
            fixture,
            "whip_refusals_and_garbage_leave_other_streams_playing",
            Light,
            |f, c| {
                Box::pin(
                    async move { whip::refusals_and_garbage(c, f.live_stream(c).await?).await },
                )
            },
        ),
        on_cluster(fixture, "takeover_across_protocols", Light, |_, c| {
            Box::pin(whip::takeover_across_protocols(c))
        }),
        on_cluster(
            fixture,
            "whip_slow_posts_with_wrong_keys_leave_a_keyed_publish_working",
            Heavy,
            |_, _| Box::pin(whip::slow_keyless_posts_leave_whip_working()),
        ),
        on_its_own(
            fixture,
            "a_dead_listener_stops_up_non_zero",
            Light,
            liveness::dead_listeners_stop_up_non_zero,
        ),
        // Private streams (issue 34): the browser plays one, so heavy.
        on_cluster(
            fixture,
            "private_stream_refuses_every_bad_token_and_plays_with_its_own",
            Heavy,
            |f, c| {
                Box::pin(
                    async move { private::check_private_stream(c, f.live_stream(c).await?).await },
                )
            },
        ),
        on_cluster(
            fixture,
            "load_balancer_answers_429_to_a_flooding_client_only",
            Light,
            |f, c| {
                Box::pin(
                    async move { private::check_request_budget(c, f.live_stream(c).await?).await },
                )
            },
        ),
        on_its_own(
            fixture,
            "on_publish_hook_refuses_times_out_and_allows",
            Heavy,
            private::check_hooks,
        ),
        on_its_own(
            fixture,
            "compose_cluster_in_docker_scales_fails_over_and_survives_crashes",
            Heavy,
            compose_cluster::check_compose_cluster,
        ),
    ]
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(3);
    let fixture = match Fixture::new() {
        Ok(fixture) => Arc::new(fixture),
        Err(e) => {
            eprintln!("no runtime for the tests: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut trials = trials(&fixture);
    if args.list {
        trials.push(Trial::test(STOP, || Ok(())));
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let conclusion = libtest_mimic::run(&args, trials);
    let Ok(mut fixture) = Arc::try_unwrap(fixture) else {
        eprintln!("a test still holds the fixture");
        return ExitCode::FAILURE;
    };
    if !fixture.cluster_started() {
        return conclusion.exit_code();
    }
    // Whatever was selected, the cluster this run started is stopped and checked, as a
    // test of its own.
    let stop = Trial::test(STOP, move || {
        fixture.stop().map_err(|e| format!("{e:#}").into())
    });
    let unfiltered = Arguments {
        filter: None,
        skip: Vec::new(),
        exact: false,
        ..args
    };
    let stopped = libtest_mimic::run(&unfiltered, vec![stop]);
    if conclusion.has_failed() || stopped.has_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
