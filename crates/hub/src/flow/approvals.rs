//! Approval requests that wait for a live approver, and the approvers that watch them.
//!
//! A call whose flow no grant or rule allows becomes a pending request. Each approver watching
//! the hub gets the requests it may decide, first those already pending and then each new one,
//! and hears when a request is settled: decided, timed out or abandoned by its call.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use super::guard::Rule;
use super::may_act_for;

/// Events buffered for one approver. An approver that falls this far behind is dropped, and its
/// stream ends.
const WATCHER_BUFFER: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval request {0:?} not found; it was decided, timed out or its call ended, so list the pending requests with `bulkhead approvals`")]
    NotFound(String),
    #[error("{approver} may not decide requests of {principal}; only root or the caller's own uid may decide a request")]
    NotApprover { approver: String, principal: String },
    #[error(
        "\"always\" is not allowed for {target}/{tool} because the tool is destructive; approve \
         request {id} with --once or --session instead"
    )]
    AlwaysForDestructive { id: String, target: String, tool: String },
    #[error(
        "request {0} has no session id, so a session grant would never apply again; approve it \
         with --once or --always instead"
    )]
    NoSession(String),
    #[error("the decision is missing; send once, session, always or deny")]
    NoDecision,
    #[error("the approval of this call failed: {0}")]
    Failed(String),
}

/// A flow that waits for an approver's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    /// The `seq` of the call's `call` record in the audit log.
    pub call: u64,
    pub principal: String,
    pub session: String,
    pub source: String,
    pub target: String,
    pub tool: String,
    pub rule: Rule,
    /// The reason the rule fired, as a sentence.
    pub reason: String,
    /// The call's arguments as JSON text with whitespace collapsed.
    pub arguments: String,
    /// The argument fields that carry the source app's data, as JSON Pointers. Empty when the
    /// rule concerns the session as a whole.
    pub fields: Vec<String>,
    pub destructive: bool,
    pub requested_at_ms: u64,
    pub expires_at_ms: u64,
}

/// An approver's decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Once,
    Session,
    Always,
    Deny,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Once => "once",
            Choice::Session => "session",
            Choice::Always => "always",
            Choice::Deny => "deny",
        }
    }
}

/// The result that the waiting call receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Decided { approver: String, choice: Choice, grant: Option<String> },
    /// The decision could not be recorded or stored, so the call fails closed.
    Failed(String),
}

/// An item of an approver's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Requested(Arc<Request>),
    /// The request is no longer pending. `outcome` gives the reason, such as "approved once by uid:0".
    Settled { id: String, outcome: String },
}

struct Entry {
    request: Arc<Request>,
    answer: oneshot::Sender<Answer>,
}

struct Watcher {
    approver: String,
    events: mpsc::Sender<Event>,
}

#[derive(Default)]
struct State {
    /// Pending requests, oldest first.
    pending: Vec<Entry>,
    watchers: Vec<Watcher>,
}

/// The pending requests and the watching approvers of one hub.
#[derive(Default)]
pub struct Approvals {
    state: Mutex<State>,
}

impl Approvals {
    /// Returns the number of requests that wait for a decision.
    pub fn pending(&self) -> usize {
        self.state().pending.len()
    }

    /// Reports whether an approver that may decide requests of `principal` is watching.
    pub fn has_approver(&self, principal: &str) -> bool {
        let mut state = self.state();
        state.watchers.retain(|watcher| !watcher.events.is_closed());
        state.watchers.iter().any(|watcher| may_act_for(&watcher.approver, principal))
    }

    /// Returns an id that no pending request has.
    pub fn new_id(&self) -> String {
        let state = self.state();
        loop {
            let id = super::grants::short_id();
            if !state.pending.iter().any(|entry| entry.request.id == id) {
                return id;
            }
        }
    }

    /// Adds a pending request, sends it to the approvers that may decide it, and returns the
    /// receiver of its decision with the shared request.
    pub fn open(&self, request: Request) -> (oneshot::Receiver<Answer>, Arc<Request>) {
        let (answer, receiver) = oneshot::channel();
        let request = Arc::new(request);
        let mut state = self.state();
        state.pending.push(Entry { request: request.clone(), answer });
        publish(&mut state, &request.principal, Event::Requested(request.clone()));
        (receiver, request)
    }

    /// Removes the pending request `id` for `approver` to decide, after `check` accepts the
    /// decision. A request that `check` rejects stays pending.
    pub fn take(
        &self,
        id: &str,
        approver: &str,
        check: impl FnOnce(&Request) -> Result<(), ApprovalError>,
    ) -> Result<(Arc<Request>, oneshot::Sender<Answer>), ApprovalError> {
        let mut state = self.state();
        let index = state
            .pending
            .iter()
            .position(|entry| entry.request.id == id)
            .ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        let request = &state.pending[index].request;
        if !may_act_for(approver, &request.principal) {
            return Err(ApprovalError::NotApprover {
                approver: approver.to_string(),
                principal: request.principal.clone(),
            });
        }
        check(request)?;
        let entry = state.pending.remove(index);
        Ok((entry.request, entry.answer))
    }

    /// Removes the pending request `id` without a decision, and returns it, or `None` when it is
    /// no longer pending.
    pub fn withdraw(&self, id: &str) -> Option<Arc<Request>> {
        let mut state = self.state();
        let index = state.pending.iter().position(|entry| entry.request.id == id)?;
        Some(state.pending.remove(index).request)
    }

    /// Tells the approvers of `request` that it is no longer pending.
    pub fn settle(&self, request: &Request, outcome: String) {
        let event = Event::Settled { id: request.id.clone(), outcome };
        publish(&mut self.state(), &request.principal, event);
    }

    /// Adds a watching approver, and returns the pending requests it may decide and the receiver
    /// of its later events.
    pub fn watch(&self, approver: &str) -> (Vec<Arc<Request>>, mpsc::Receiver<Event>) {
        let (events, receiver) = mpsc::channel(WATCHER_BUFFER);
        let mut state = self.state();
        let pending = state
            .pending
            .iter()
            .filter(|entry| may_act_for(approver, &entry.request.principal))
            .map(|entry| entry.request.clone())
            .collect();
        state.watchers.push(Watcher { approver: approver.to_string(), events });
        (pending, receiver)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sends `event` to every watcher that may act for `principal`. A watcher whose stream closed is
/// removed, and so is one whose buffer is full, because it would miss requests.
fn publish(state: &mut State, principal: &str, event: Event) {
    state.watchers.retain(|watcher| {
        if !may_act_for(&watcher.approver, principal) {
            return !watcher.events.is_closed();
        }
        match watcher.events.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    approver = %watcher.approver,
                    "dropped an approver that read {WATCHER_BUFFER} events behind; it can watch again"
                );
                false
            }
        }
    });
}
