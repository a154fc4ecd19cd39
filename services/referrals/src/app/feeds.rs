//! The watch streams: an organisation's referral or task feed (kept by the
//! platform's [`feed`](throughcare_platform::feed) module), streamed live until
//! the client hangs up or the service shuts down.

use super::App;
use crate::error::Error;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

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

impl App {
    /// Streams `organisation`'s entries of `feed` after `after` as
    /// (sequence, snapshot), live.
    pub fn watch(
        self: &Arc<Self>,
        organisation: String,
        feed: Feed,
        after: i64,
        shutdown: CancellationToken,
    ) -> ReceiverStream<Result<(i64, Vec<u8>), Status>> {
        let (sender, receiver) = mpsc::channel(16);
        let mut follower = self.feeds.follow(&organisation, feed.name(), after);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = sender.closed() => return,
                    next = follower.next(&shutdown) => next,
                };
                let item = match next {
                    Ok(Some(item)) => Ok((item.seq, item.snapshot)),
                    Ok(None) => Err(Status::unavailable(
                        "server is shutting down; resume from the last cursor",
                    )),
                    Err(error) => Err(Error::from(error).into()),
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
