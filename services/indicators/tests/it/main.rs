//! The indicators service through gRPC — beside the real referrals service,
//! whose observations it consumes — on PostgreSQL with the Kafka broker and
//! on SQLite with the in-process bus.

#![allow(unreachable_pub)]

mod bad_input;
mod caseload;
mod every_indicator;
mod fixtures;
mod flows;
mod harness;
mod self_reports;

throughcare_testkit::on_both_backends!(
    crate::harness::Rig;
    flows::observations_become_suppressed_values_per_area_period_and_stratum,
    flows::watchers_and_the_topic_receive_each_snapshot_of_their_areas,
    flows::the_csv_export_has_a_row_per_cell_with_its_suppression,
    flows::a_restart_and_a_rebuild_from_offset_zero_give_identical_results,
    flows::late_records_publish_a_numbered_revision_of_their_period,
    flows::a_month_still_receiving_records_is_published_only_once_it_settles,
    flows::people_found_to_be_one_are_counted_once,
    flows::follow_through_after_the_month_end_counts_in_the_month_of_release,
    caseload::the_caseload_counts_everyone_under_supervision_until_their_spell_ends,
    self_reports::self_reports_feed_the_outcome_and_experience_indicators,
    self_reports::a_malformed_self_report_is_refused_by_field,
    every_indicator::every_indicator_counts_exactly_its_people_in_a_synthetic_cohort,
    bad_input::unknown_codes_and_malformed_periods_are_refused_by_field,
    bad_input::commissioners_see_only_their_own_areas,
    bad_input::an_organisation_records_only_its_own_structure_indicators,
);
