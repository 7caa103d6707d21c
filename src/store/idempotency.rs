//! Idempotency keys: what a key remembers of the request that first used it
//! (a fingerprint), and how the events of one write are decided against the
//! keys, the same way on every store.
//!
//! A key given again with the same request is answered with the first event;
//! given with a different request it is refused (`KeyReused`), and so is the
//! rest of that request's events (`Withheld`): a client request is stored
//! whole or not at all, even when it shares its transaction with others.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::rows::repeat_of;
use super::{Inserted, NewEvent, StoreError, StoreResult};
use crate::catalog::ObjectRef;
use crate::ids::{EventId, ProjectId};

/// SHA-256 of what an event asks for: its type, object and payload as stored
/// (compact JSON, in the client's key order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Each part is length-prefixed, so that no two different requests hash
    /// the same bytes (a type ending where an object might begin, say).
    pub fn of(event_type: &str, object: Option<&ObjectRef>, payload: &str) -> Fingerprint {
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        part(event_type.as_bytes());
        match object {
            Some(object) => part(super::rows::to_json(object).as_bytes()),
            None => part(b""),
        }
        part(payload.as_bytes());
        Fingerprint(hash.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A fingerprint column's value.
    pub(super) fn from_stored(bytes: &[u8]) -> StoreResult<Fingerprint> {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
            StoreError::Corrupt(format!(
                "idempotency_keys.fingerprint: {} bytes, not 32",
                bytes.len()
            ))
        })?;
        Ok(Fingerprint(bytes))
    }
}

/// An event's idempotency key and the fingerprint of its request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: Fingerprint,
}

/// A key's stored row, given within its window. Rows written before
/// fingerprints were kept have none: any request repeats them.
pub(super) struct StoredKey {
    pub event_id: EventId,
    pub fingerprint: Option<Fingerprint>,
}

/// `(project id, key)`, borrowed from the events of the write.
pub(super) type KeyOf<'a> = (&'a str, &'a str);

/// The key of event `e`, when it has one.
pub(super) fn key_of(e: &NewEvent) -> Option<KeyOf<'_>> {
    let key = e.idempotency_key.as_ref()?;
    Some((e.project_id.as_str(), key.key.as_str()))
}

/// The answer to one event, before the store has read what it needs.
pub(super) enum Answer {
    Decided(Inserted),
    /// Repeats the stored event with this id: the store reads its deliveries.
    ReplayOfStored(EventId),
}

pub(super) struct Decisions {
    pub answers: Vec<Answer>,
    /// The events whose key the store is to remember, one per key: the first
    /// event written with it.
    pub claims: Vec<usize>,
}

/// Decides, in order, which events are new, which repeat a key (stored, or
/// of an earlier event of this write) and which are refused. `stored` holds
/// the keys of this write that a live row already has. Events of consecutive
/// equal `request` are one client request: one refused event withholds the
/// others, and a withheld event claims no key.
pub(super) fn decide<'a>(
    events: &'a [NewEvent],
    live_projects: &HashSet<ProjectId>,
    stored: &HashMap<KeyOf<'a>, StoredKey>,
) -> Decisions {
    let mut answers = Vec::with_capacity(events.len());
    let mut owners: HashMap<KeyOf<'a>, usize> = HashMap::new();
    let mut claims = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let request = events[start].request;
        let end = events[start..]
            .iter()
            .position(|e| e.request != request)
            .map_or(events.len(), |n| start + n);
        let mut tentative: HashMap<KeyOf<'a>, usize> = HashMap::new();
        let mut refused = false;
        for (i, event) in events.iter().enumerate().take(end).skip(start) {
            let answer = if !live_projects.contains(&event.project_id) {
                Answer::Decided(Inserted::ProjectGone)
            } else if let Some(idem) = &event.idempotency_key {
                let key = (event.project_id.as_str(), idem.key.as_str());
                let earlier = tentative.get(&key).or_else(|| owners.get(&key));
                if let Some(&first) = earlier {
                    match events[first].idempotency_key.as_ref() {
                        Some(f) if f.fingerprint == idem.fingerprint => {
                            Answer::Decided(repeat_of(&events[first]))
                        }
                        _ => Answer::Decided(Inserted::KeyReused),
                    }
                } else if let Some(row) = stored.get(&key) {
                    match row.fingerprint {
                        Some(f) if f != idem.fingerprint => Answer::Decided(Inserted::KeyReused),
                        _ => Answer::ReplayOfStored(row.event_id.clone()),
                    }
                } else {
                    tentative.insert(key, i);
                    Answer::Decided(Inserted::Created)
                }
            } else {
                Answer::Decided(Inserted::Created)
            };
            refused |= matches!(answer, Answer::Decided(Inserted::KeyReused));
            answers.push(answer);
        }
        if refused {
            for answer in &mut answers[start..end] {
                if !matches!(answer, Answer::Decided(Inserted::KeyReused)) {
                    *answer = Answer::Decided(Inserted::Withheld);
                }
            }
        } else {
            claims.extend(tentative.values());
            owners.extend(tentative);
        }
        start = end;
    }
    claims.sort_unstable();
    Decisions { answers, claims }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewDelivery;

    fn event(n: usize, request: u32, key: Option<&str>, payload: &str) -> NewEvent {
        NewEvent {
            id: format!("evt_{n}").into(),
            project_id: "p".into(),
            event_type: "T".into(),
            object: None,
            payload: payload.into(),
            created_at: 0,
            idempotency_key: key.map(|k| IdempotencyKey {
                key: k.into(),
                fingerprint: Fingerprint::of("T", None, payload),
            }),
            deliveries: vec![NewDelivery {
                id: format!("msg_{n}").into(),
                webhook_id: "w".into(),
                deferred_to: None,
            }],
            lease_until: 0,
            is_test: false,
            request,
        }
    }

    fn decided(d: &Decisions) -> Vec<Option<&Inserted>> {
        d.answers
            .iter()
            .map(|a| match a {
                Answer::Decided(i) => Some(i),
                Answer::ReplayOfStored(_) => None,
            })
            .collect()
    }

    fn live() -> HashSet<ProjectId> {
        HashSet::from([ProjectId::from("p")])
    }

    #[test]
    fn fingerprints_tell_each_part_apart() {
        let object = ObjectRef {
            object_type: "model".into(),
            name: Some("churn".into()),
            version: None,
        };
        let base = Fingerprint::of("T", None, "{}");
        assert_eq!(base, Fingerprint::of("T", None, "{}"));
        assert_ne!(base, Fingerprint::of("U", None, "{}"));
        assert_ne!(base, Fingerprint::of("T", Some(&object), "{}"));
        assert_ne!(base, Fingerprint::of("T", None, r#"{"a":1}"#));
        // Length prefixes: moving a byte from one part to the next changes it.
        assert_ne!(
            Fingerprint::of("Ta", None, "{}"),
            Fingerprint::of("T", None, "a{}")
        );
    }

    #[test]
    fn a_refused_event_withholds_its_request_and_claims_nothing() {
        let events = [
            event(0, 0, Some("a"), "{}"),
            event(1, 0, Some("k"), "{}"),
            event(2, 0, Some("k"), r#"{"x":1}"#),
            // The next request may take "a" and "k": the first one claimed neither.
            event(3, 1, Some("k"), r#"{"x":1}"#),
            event(4, 2, Some("k"), r#"{"x":1}"#),
            event(5, 2, None, "{}"),
        ];
        let d = decide(&events, &live(), &HashMap::new());
        assert_eq!(
            decided(&d),
            vec![
                Some(&Inserted::Withheld),
                Some(&Inserted::Withheld),
                Some(&Inserted::KeyReused),
                Some(&Inserted::Created),
                Some(&repeat_of(&events[3])),
                Some(&Inserted::Created),
            ]
        );
        assert_eq!(d.claims, vec![3]);
    }

    #[test]
    fn stored_keys_repeat_or_refuse_by_fingerprint() {
        let events = [
            event(0, 0, Some("same"), "{}"),
            event(1, 1, Some("other"), "{}"),
            event(2, 2, Some("legacy"), r#"{"x":1}"#),
        ];
        let stored_fp = Fingerprint::of("T", None, "{}");
        let stored = HashMap::from([
            (
                ("p", "same"),
                StoredKey {
                    event_id: "evt_s".into(),
                    fingerprint: Some(stored_fp),
                },
            ),
            (
                ("p", "other"),
                StoredKey {
                    event_id: "evt_o".into(),
                    fingerprint: Some(Fingerprint::of("U", None, "{}")),
                },
            ),
            (
                ("p", "legacy"),
                StoredKey {
                    event_id: "evt_l".into(),
                    fingerprint: None,
                },
            ),
        ]);
        let d = decide(&events, &live(), &stored);
        assert!(matches!(&d.answers[0], Answer::ReplayOfStored(id) if id == "evt_s"));
        assert!(matches!(
            &d.answers[1],
            Answer::Decided(Inserted::KeyReused)
        ));
        assert!(matches!(&d.answers[2], Answer::ReplayOfStored(id) if id == "evt_l"));
        assert!(d.claims.is_empty());
    }
}
