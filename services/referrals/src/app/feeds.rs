//! Change feeds behind the watch streams: every change to a referral or task
//! is appended, in the same transaction, to the feed of each organisation that
//! may see it. A watcher resumes strictly after its cursor, so a reconnect
//! neither skips nor repeats anything.

use super::App;
use crate::error::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use throughcare_platform::validation::FieldViolation;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// How often a watcher looks for changes committed by other instances.
const POLL: Duration = Duration::from_secs(1);
const BATCH: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Referrals,
    Tasks,
}

impl Feed {
    pub fn name(self) -> &'static str {
        match self {
            Feed::Referrals => "referrals",
            Feed::Tasks => "tasks",
        }
    }
}

/// Tells watchers in this process that something committed.
#[derive(Debug)]
pub struct FeedNotifier(watch::Sender<u64>);

impl Default for FeedNotifier {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl FeedNotifier {
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// A cursor from a client: empty for the beginning, else a sequence number.
pub(crate) fn parse_cursor(cursor: &str) -> Result<i64> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            Error::from(FieldViolation::new(
                "cursor",
                "is not a cursor this service issued",
            ))
        })
}

impl App {
    /// Streams `organisation`'s entries of `feed` after `after`, live, until the
    /// client hangs up or the service shuts down. Items are (sequence, snapshot).
    pub fn watch(
        self: &Arc<Self>,
        organisation: String,
        feed: Feed,
        after: i64,
        shutdown: CancellationToken,
    ) -> ReceiverStream<std::result::Result<(i64, Vec<u8>), Status>> {
        let (sender, receiver) = mpsc::channel(BATCH as usize);
        let app = self.clone();
        tokio::spawn(async move {
            let mut changes = app.feeds.subscribe();
            let mut cursor = after;
            loop {
                changes.borrow_and_update();
                let entries = match app
                    .store
                    .feed_after(&organisation, feed.name(), cursor, BATCH)
                    .await
                {
                    Ok(entries) => entries,
                    Err(error) => {
                        let _ = sender.send(Err(Error::from(error).into())).await;
                        return;
                    }
                };
                let full = entries.len() as i64 == BATCH;
                for (seq, snapshot) in entries {
                    if sender.send(Ok((seq, snapshot))).await.is_err() {
                        return;
                    }
                    cursor = seq;
                }
                if full {
                    continue;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = sender.send(Err(Status::unavailable("server is shutting down; resume from the last cursor"))).await;
                        return;
                    }
                    _ = sender.closed() => return,
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        });
        ReceiverStream::new(receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_are_sequence_numbers() {
        assert_eq!(parse_cursor("").unwrap(), 0);
        assert_eq!(parse_cursor("42").unwrap(), 42);
        assert!(parse_cursor("-1").is_err());
        assert!(parse_cursor("abc").is_err());
    }
}
