//! The watch streams: an organisation's referral, task or release feed (kept by the
//! platform's [`feed`](throughcare_platform::feed) module), streamed live until
//! the client hangs up or the service shuts down.

use super::App;
use crate::error::Error;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use throughcare_platform::feed::FeedEntry;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Referrals,
    Tasks,
    Releases,
}

impl Feed {
    pub fn name(self) -> &'static str {
        match self {
            Feed::Referrals => "referrals",
            Feed::Tasks => "tasks",
            Feed::Releases => "releases",
        }
    }

    /// An entry for `organisation`'s copy of this feed: `message` as it now is.
    pub(crate) fn entry(
        self,
        organisation: &str,
        entity_id: &str,
        message: &impl prost::Message,
        at: DateTime<Utc>,
    ) -> FeedEntry {
        FeedEntry {
            organisation: organisation.to_owned(),
            feed: self.name(),
            entity_id: entity_id.to_owned(),
            snapshot: message.encode_to_vec(),
            at,
        }
    }
}

impl App {
    /// Streams `organisation`'s entries of `feed` after `after` as (cursor,
    /// message), live.
    pub fn watch<M>(
        self: &Arc<Self>,
        organisation: &str,
        feed: Feed,
        after: i64,
        shutdown: CancellationToken,
    ) -> ReceiverStream<Result<(String, M), Error>>
    where
        M: prost::Message + Default + 'static,
    {
        let (sender, receiver) = mpsc::channel(16);
        let mut follower = self
            .transactions
            .feeds()
            .follow(organisation, feed.name(), after);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = sender.closed() => return,
                    next = follower.next(&shutdown) => next,
                };
                let item = match next {
                    Ok(Some(item)) => M::decode(item.snapshot.as_slice())
                        .map(|message| (item.seq.to_string(), message))
                        .map_err(|e| Error::internal("feed snapshot", e)),
                    Ok(None) => Err(Error::Unavailable(
                        "server is shutting down; resume from the last cursor".into(),
                    )),
                    Err(error) => Err(Error::from(error)),
                };
                let last = item.is_err();
                if sender.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        ReceiverStream::new(receiver)
    }
}
