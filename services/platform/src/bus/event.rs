//! Events in the CloudEvents Kafka protocol binding (binary mode): attributes
//! travel as `ce_*` headers, the protobuf payload is the record value, and the
//! W3C trace context rides along as `traceparent` / `tracestate`.

use super::Record;
use crate::telemetry::TraceHeaders;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use uuid::Uuid;

pub const CONTENT_TYPE: &str = "application/protobuf";

/// An event about to be written to the outbox or just read from the bus.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `ce_id`: unique per event, the inbox's deduplication key.
    pub id: Uuid,
    pub topic: String,
    pub key: String,
    /// `ce_type`: the full protobuf message name, e.g. `throughcare.events.v1.ReleaseNotified`.
    pub event_type: String,
    /// `ce_source`, e.g. `/throughcare/referrals`.
    pub source: String,
    pub time: DateTime<Utc>,
    pub payload: Vec<u8>,
    pub trace: TraceHeaders,
}

#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("record has no {0} header")]
    MissingHeader(&'static str),
    #[error("header {0} is malformed")]
    BadHeader(&'static str),
    #[error("unsupported ce_specversion {0}")]
    SpecVersion(String),
    #[error("event type {actual} is not {expected}")]
    WrongType { expected: String, actual: String },
    #[error("payload does not decode as {0}")]
    Payload(String),
}

impl Event {
    /// A new event carrying `message`, stamped now, with the current trace context.
    pub fn new<M: prost::Message + prost::Name>(
        topic: impl Into<String>,
        key: impl Into<String>,
        source: impl Into<String>,
        message: &M,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            topic: topic.into(),
            key: key.into(),
            event_type: M::full_name(),
            source: source.into(),
            // Microseconds: what the ce_time header and PostgreSQL keep.
            time: Utc::now().trunc_subsecs(6),
            payload: message.encode_to_vec(),
            trace: TraceHeaders::current(),
        }
    }

    pub fn is<M: prost::Name>(&self) -> bool {
        self.event_type == M::full_name()
    }

    /// The payload as `M`, checking the event type first.
    pub fn decode<M: prost::Message + prost::Name + Default>(&self) -> Result<M, EventDecodeError> {
        if !self.is::<M>() {
            return Err(EventDecodeError::WrongType {
                expected: M::full_name(),
                actual: self.event_type.clone(),
            });
        }
        M::decode(self.payload.as_slice()).map_err(|_| EventDecodeError::Payload(M::full_name()))
    }

    pub fn to_record(&self) -> Record {
        let mut headers = vec![
            ("ce_specversion".to_owned(), b"1.0".to_vec()),
            ("ce_id".to_owned(), self.id.to_string().into_bytes()),
            ("ce_type".to_owned(), self.event_type.clone().into_bytes()),
            ("ce_source".to_owned(), self.source.clone().into_bytes()),
            (
                "ce_time".to_owned(),
                self.time
                    .to_rfc3339_opts(SecondsFormat::Micros, true)
                    .into_bytes(),
            ),
            ("content-type".to_owned(), CONTENT_TYPE.as_bytes().to_vec()),
        ];
        if let Some(p) = &self.trace.traceparent {
            headers.push(("traceparent".to_owned(), p.clone().into_bytes()));
        }
        if let Some(s) = &self.trace.tracestate {
            headers.push(("tracestate".to_owned(), s.clone().into_bytes()));
        }
        Record {
            topic: self.topic.clone(),
            key: self.key.clone(),
            headers,
            payload: self.payload.clone(),
        }
    }

    pub fn from_record(record: &Record) -> Result<Self, EventDecodeError> {
        let header = |name: &'static str| {
            record
                .header(name)
                .ok_or(EventDecodeError::MissingHeader(name))
                .and_then(|v| std::str::from_utf8(v).map_err(|_| EventDecodeError::BadHeader(name)))
        };
        let version = header("ce_specversion")?;
        if version != "1.0" {
            return Err(EventDecodeError::SpecVersion(version.to_owned()));
        }
        let id =
            Uuid::parse_str(header("ce_id")?).map_err(|_| EventDecodeError::BadHeader("ce_id"))?;
        let time = DateTime::parse_from_rfc3339(header("ce_time")?)
            .map_err(|_| EventDecodeError::BadHeader("ce_time"))?
            .with_timezone(&Utc);
        Ok(Self {
            id,
            topic: record.topic.clone(),
            key: record.key.clone(),
            event_type: header("ce_type")?.to_owned(),
            source: header("ce_source")?.to_owned(),
            time,
            payload: record.payload.clone(),
            trace: TraceHeaders {
                traceparent: record.header_str("traceparent").map(str::to_owned),
                tracestate: record.header_str("tracestate").map(str::to_owned),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use throughcare_proto::events::v1::ReleaseReversed;

    #[test]
    fn round_trips_through_cloudevents_headers() {
        let message = ReleaseReversed {
            release_id: "rel-1".into(),
            person_key: "0".repeat(32),
            ..Default::default()
        };
        let mut event = Event::new("t", "k", "/throughcare/test", &message);
        event.trace.traceparent =
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        let record = event.to_record();
        assert_eq!(
            record.header_str("ce_type"),
            Some("throughcare.events.v1.ReleaseReversed")
        );
        assert_eq!(record.header_str("content-type"), Some(CONTENT_TYPE));
        let back = Event::from_record(&record).unwrap();
        assert_eq!(
            back,
            Event {
                time: back.time,
                ..event.clone()
            }
        );
        assert_eq!(back.time.timestamp_micros(), event.time.timestamp_micros());
        assert_eq!(back.decode::<ReleaseReversed>().unwrap(), message);
    }

    #[test]
    fn records_without_cloudevents_headers_are_refused() {
        let record = Record {
            topic: "t".into(),
            key: "k".into(),
            headers: vec![],
            payload: vec![1, 2, 3],
        };
        assert!(matches!(
            Event::from_record(&record),
            Err(EventDecodeError::MissingHeader("ce_specversion"))
        ));
    }

    #[test]
    fn decoding_as_the_wrong_type_is_an_error() {
        let event = Event::new("t", "k", "/s", &ReleaseReversed::default());
        let wrong = event.decode::<throughcare_proto::events::v1::ReleaseNotified>();
        assert!(matches!(wrong, Err(EventDecodeError::WrongType { .. })));
    }
}
