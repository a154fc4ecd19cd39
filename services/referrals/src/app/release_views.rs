//! Releases as their parties read them — the organisation that notified a
//! release, its prison and the supervising probation delivery unit: each
//! release with what became of its pushes, listed page by page and announced
//! on each party's release feed whenever it changes.

use super::{App, Feed, encode_token, page};
use crate::domain::fields;
use crate::domain::release::{Release, ReleaseState};
use crate::error::{Error, Result};
use crate::store::ReleaseFilter;
use crate::store::receipts;
use throughcare_platform::identity::Caller;
use throughcare_platform::validation::Violations;
use throughcare_platform::work::Work;
use throughcare_proto::referrals::v1 as pb;
use throughcare_proto::types::v1::PersonIdentifiers;

/// Who a release's changes are announced to: its notifier, its prison and
/// its probation delivery unit, each once.
fn parties(release: &Release) -> Vec<&str> {
    let mut parties = vec![release.notified_by.as_str()];
    let others = [
        Some(release.releasing_prison.as_str()),
        release.destination.probation_delivery_unit.as_deref(),
    ];
    for party in others.into_iter().flatten() {
        if !parties.contains(&party) {
            parties.push(party);
        }
    }
    parties
}

impl App {
    /// Records a release change in its parties' release feeds.
    pub(crate) fn release_changed(&self, work: &mut Work, release: &Release, proto: &pb::Release) {
        let now = self.now();
        for party in parties(release) {
            work.announce(Feed::Releases.entry(party, &release.release_id, proto, now));
        }
    }

    /// A release as it stands in this unit of work, with its receipts.
    pub(crate) async fn release_proto(
        &self,
        work: &mut Work,
        release: &Release,
        ids: PersonIdentifiers,
    ) -> Result<pb::Release> {
        let trigger = ("release", release.release_id.as_str());
        Ok(pb::Release {
            deliveries: receipts::of_trigger(work.tx(), trigger).await?,
            ..release.to_proto(ids)
        })
    }

    pub async fn list_releases(
        &self,
        caller: &Caller,
        r: &pb::ListReleasesRequest,
    ) -> Result<pb::ListReleasesResponse> {
        let filter = release_filter(caller, r)?;
        // The watch cursor is read first: a watcher starting there may see a
        // change the listing already shows, but never misses one.
        let watch_cursor = self
            .transactions
            .feeds()
            .head(caller.code(), Feed::Releases.name())
            .await?;
        let listed = self.store.list_releases(&filter).await?;
        let next_page_token = match listed.last() {
            Some((last, _)) if listed.len() as i64 == filter.limit => {
                encode_token(last.notified_at, &last.release_id)
            }
            _ => String::new(),
        };
        let ids: Vec<&str> = listed.iter().map(|(r, _)| r.release_id.as_str()).collect();
        let mut receipts = receipts::of_triggers(self.store.db(), "release", &ids).await?;
        Ok(pb::ListReleasesResponse {
            releases: listed
                .iter()
                .map(|(release, person)| pb::Release {
                    deliveries: receipts.remove(&release.release_id).unwrap_or_default(),
                    ..release.to_proto(person.to_proto())
                })
                .collect(),
            next_page_token,
            watch_cursor: watch_cursor.to_string(),
        })
    }
}

/// The page a `ListReleases` request asks for, validated.
fn release_filter(caller: &Caller, r: &pb::ListReleasesRequest) -> Result<ReleaseFilter> {
    let mut v = Violations::new();
    let states = fields::required_enums::<pb::ReleaseState>(&mut v, &r.states, "states");
    let (limit, after) = page(&mut v, r.page_size, &r.page_token);
    v.finish(|| ReleaseFilter {
        organisation: caller.code().to_owned(),
        states: states
            .into_iter()
            .map(|s| match s {
                pb::ReleaseState::Reversed => ReleaseState::Reversed,
                _ => ReleaseState::Notified,
            })
            .collect(),
        after,
        limit,
    })
    .map_err(Error::from)
}
