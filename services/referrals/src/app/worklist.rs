//! Reading referrals: one referral with its history, and an organisation's
//! worklist, page by page.

use super::{App, Feed, encode_token, page};
use crate::domain::fields;
use crate::domain::referral::ReferralState;
use crate::error::{Error, Result};
use crate::store::receipts;
use crate::store::rows::{HistoryRow, StoredReferral, enum_name};
use crate::store::{ReferralFilter, Side};
use throughcare_platform::clock::to_timestamp;
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::Violations;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::{PersonIdentifiers, ServiceType};

impl App {
    pub async fn get_referral(
        &self,
        caller: &Caller,
        referral_id: &str,
    ) -> Result<pb::GetReferralResponse> {
        let referral = self
            .store
            .referral(referral_id)
            .await?
            .filter(|r| is_party(r, caller.code()))
            .ok_or(Error::NotFound("referral"))?;
        let ids = self.person_ids(&referral.person_key, "referral").await?;
        let history = self.store.history(referral_id).await?;
        let mut proto = with_history(referral_to_proto(&referral, &ids), history)?;
        proto.deliveries = self.store.receipts("referral", referral_id).await?;
        Ok(pb::GetReferralResponse {
            referral: Some(proto),
        })
    }

    pub async fn list_referrals(
        &self,
        caller: &Caller,
        r: &pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse> {
        let filter = referral_filter(caller, r)?;
        let limit = filter.limit;
        // The watch cursor is read first: a watcher starting there may see a
        // change the listing already shows, but never misses one.
        let watch_cursor = self
            .transactions
            .feeds()
            .head(caller.code(), Feed::Referrals.name())
            .await?;
        let listed = self.store.list_referrals(&filter).await?;
        let next_page_token = match listed.last() {
            Some(last) if listed.len() as i64 == limit => {
                encode_token(last.referral.requested_at, &last.referral.referral_id)
            }
            _ => String::new(),
        };
        let ids: Vec<&str> = listed
            .iter()
            .map(|l| l.referral.referral_id.as_str())
            .collect();
        let mut receipts = receipts::of_triggers(self.store.db(), "referral", &ids).await?;
        Ok(pb::ListReferralsResponse {
            referrals: listed
                .iter()
                .map(|l| pb::Referral {
                    deliveries: receipts.remove(&l.referral.referral_id).unwrap_or_default(),
                    ..referral_to_proto(&l.referral, &l.person.to_proto())
                })
                .collect(),
            next_page_token,
            watch_cursor: watch_cursor.to_string(),
        })
    }
}

/// The worklist query a `ListReferrals` request asks for, validated.
fn referral_filter(caller: &Caller, r: &pb::ListReferralsRequest) -> Result<ReferralFilter> {
    let mut v = Violations::new();
    let side = match v.check(fields::optional_enum::<pb::ReferralRole>(r.role, "role")) {
        Some(pb::ReferralRole::Referrer) => Side::Referrer,
        Some(pb::ReferralRole::Provider) => Side::Provider,
        _ => Side::Either,
    };
    let states = fields::required_enums::<pb::ReferralState>(&mut v, &r.states, "states");
    let services = fields::required_enums::<ServiceType>(&mut v, &r.services, "services");
    let mut timestamp = |value: Option<&prost_types::Timestamp>, field: &str| {
        v.check(fields::timestamp(value, field)).flatten()
    };
    let requested_after = timestamp(r.requested_after.as_ref(), "requested_after");
    let requested_before = timestamp(r.requested_before.as_ref(), "requested_before");
    let (limit, after) = page(&mut v, r.page_size, &r.page_token);
    v.finish(|| ReferralFilter {
        organisation: caller.code().to_owned(),
        side,
        states: states
            .into_iter()
            .filter_map(ReferralState::from_proto)
            .collect(),
        services: services.into_iter().map(enum_name).collect(),
        requested_after,
        requested_before,
        after,
        limit,
    })
    .map_err(Error::from)
}

pub(crate) fn referral_to_proto(r: &StoredReferral, ids: &PersonIdentifiers) -> pb::Referral {
    pb::Referral {
        referral_id: r.referral_id.clone(),
        person: Some(ids.clone()),
        service: r.service as i32,
        referrer: r.referrer.clone(),
        provider: r.provider.clone(),
        state: r.state.to_proto() as i32,
        urgency: r.urgency as i32,
        release_id: r.release_id.clone().unwrap_or_default(),
        appointment_at: r.appointment_at.map(to_timestamp),
        rejection_reason: r.rejection_reason.map_or(0, |x| x as i32),
        rejection_text: r.rejection_text.clone().unwrap_or_default(),
        cancellation_reason: r.cancellation_reason.map_or(0, |x| x as i32),
        requested_at: Some(to_timestamp(r.requested_at)),
        updated_at: Some(to_timestamp(r.updated_at)),
        version: r.version,
        history: Vec::new(),
        deliveries: Vec::new(),
    }
}

pub(super) fn with_history(
    mut referral: pb::Referral,
    history: Vec<HistoryRow>,
) -> Result<pb::Referral> {
    referral.history = history
        .iter()
        .map(|h| h.to_proto())
        .collect::<std::result::Result<_, _>>()?;
    Ok(referral)
}

pub(super) fn is_party(referral: &StoredReferral, organisation: &str) -> bool {
    referral.referrer == organisation || referral.provider == organisation
}
