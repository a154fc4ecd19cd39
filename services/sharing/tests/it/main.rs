//! The sharing service through gRPC — beside the real referrals service, whose
//! events it consumes — on PostgreSQL with the Kafka broker and on SQLite with
//! the in-process bus; and its decision against a separately written reference.

#![allow(unreachable_pub)]

mod adversarial;
mod decisions;
mod fixtures;
mod governance;
mod harness;
mod linking;
mod probes;
mod pushes;
mod receipts;
mod reference;
mod scoped;

throughcare_testkit::on_both_backends!(
    crate::harness::Rig;
    decisions::consent_permits_exactly_the_permitted_categories,
    decisions::deny_overrides_permit,
    decisions::agreements_need_a_justification_and_are_flagged,
    decisions::a_consent_covers_only_its_period,
    decisions::bad_input_is_refused_by_field_and_nothing_is_written,
    decisions::each_rpc_needs_the_right_role,
    governance::only_a_disclosing_party_or_national_governance_registers,
    governance::only_a_disclosing_party_or_national_governance_revokes,
    governance::invalid_parties_are_refused_by_field_and_nothing_is_written,
    governance::a_push_under_an_agreement_names_it_writes_no_justification_and_is_flagged,
    pushes::the_permitted_part_is_pushed_at_release_and_at_referral,
    pushes::withdrawing_consent_cuts_off_deliveries_not_yet_made,
    pushes::withdrawing_one_consent_leaves_pushes_another_basis_covers,
    pushes::a_delivery_once_made_is_a_fixed_record,
    pushes::a_reversal_withdraws_what_the_release_caused,
    pushes::a_release_replayed_after_its_reversal_stays_reversed,
    pushes::a_referral_replayed_after_it_ended_owes_nothing,
    pushes::a_tampered_audit_row_is_found_at_that_row,
    pushes::subject_access_lists_every_disclosure,
    receipts::a_push_is_owed_delivered_and_processed_and_its_sender_sees_each,
    receipts::an_unread_push_is_found_overdue_and_a_withheld_one_says_so,
    probes::a_request_without_its_justification_is_denied_and_audited,
    probes::refused_unseen_and_uncovered_people_are_answered_alike,
    linking::a_refusal_keeps_counting_when_referrals_links_the_identifiers,
    linking::a_record_joining_two_known_people_is_stored_not_lost,
    scoped::only_organisations_related_to_the_person_read_or_withdraw_consents,
    scoped::subject_access_and_the_audit_log_are_scoped,
    adversarial::an_insider_cutting_the_tail_is_found,
    adversarial::an_insider_recomputing_the_chain_is_found_at_the_entry_changed,
    adversarial::an_insider_forging_a_checkpoint_is_found,
    adversarial::a_curious_organisation_learns_nothing_and_grants_itself_nothing,
);
