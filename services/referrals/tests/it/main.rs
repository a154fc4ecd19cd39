//! The referrals service through gRPC, on PostgreSQL with the Kafka broker and
//! on SQLite with the in-process bus: one suite, both backends.

#![allow(unreachable_pub)]

mod bad_input;
mod continuity;
mod fixtures;
mod harness;
mod lifecycle;
mod linking;
mod releases;
mod transitions;
mod worklists;

throughcare_testkit::on_both_backends!(
    crate::harness::TestService;
    releases::a_release_opens_its_pathway_and_announces_it,
    linking::people_found_to_be_one_are_merged_and_announced_once,
    releases::replays_return_the_first_response_and_reused_keys_are_refused,
    releases::concurrent_releases_answer_as_if_each_were_alone,
    releases::a_reversal_undoes_what_the_release_started,
    releases::releases_are_visible_only_to_those_involved,
    releases::release_reasons_decide_the_pathway_and_what_is_counted,
    lifecycle::the_whole_lifecycle_closes_the_continuity_task,
    lifecycle::every_illegal_transition_is_refused_with_the_current_state,
    lifecycle::strangers_see_nothing_and_parties_only_their_part,
    lifecycle::one_active_referral_per_person_service_and_provider,
    lifecycle::replayed_updates_change_nothing,
    worklists::worklists_filter_and_page_without_gaps_or_repeats,
    worklists::a_watch_resumes_after_a_dropped_connection_without_gaps_or_duplicates,
    continuity::missed_deadlines_go_overdue_and_alerts_are_acknowledged,
    continuity::a_release_without_supervision_makes_the_prison_responsible,
    transitions::every_transition_is_recorded_and_announced,
    transitions::assessments_are_sealed_at_rest_and_read_back_by_their_author,
    bad_input::bad_input_is_refused_by_field_and_nothing_is_written,
);
