//! The hub's flow checks: each call or transfer that may carry another app's data is run through
//! the flow guard, and every flow it finds is decided by the broker and recorded before the data
//! moves.

use serde_json::Value;

use super::Hub;
use crate::audit::fields;
use crate::error::{FlowDenial, HubError};
use crate::flow::broker::FlowCall;
use crate::flow::{guard, Caller, FlowNotice, FlowNotices, FlowReport};
use crate::registry::AppEntry;

/// Data of one app that a transfer carries, with the fields of the payload it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub app: String,
    /// JSON Pointers into the payload, such as "/notes".
    pub fields: Vec<String>,
}

/// The flow-check settings of a call or transfer made on behalf of a query.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlowOptions<'a> {
    /// Data of other apps that the hub placed in the arguments. Each is a flow of its own.
    pub carried: &'a [Carried],
    /// Whether a denied flow whose data sits in named fields empties those fields and lets the
    /// call go ahead without the data, instead of failing it. A flow of the confidential rule
    /// concerns the whole session, so it is never withheld.
    pub withhold: bool,
    /// The channel that hears of pending requests and decisions.
    pub notices: Option<&'a FlowNotices>,
}

/// The outcome of one flow check.
enum Checked {
    /// No flow needs a decision.
    Clear,
    /// A flow from this source app was allowed.
    Allowed(String),
    /// A flow was denied, and its data may be withheld from these fields.
    Withhold { source: String, fields: Vec<String> },
}

impl Hub {
    /// Decides whether data that the hub itself moves, such as a query step's input or a
    /// request_app result, may flow into `app`. `label` names the transfer in the audit log and in
    /// rules, such as "(instruction)". Each source app in `options.carried` other than `app` is a
    /// flow, and so is any flow the guard finds. A denial ends the check with
    /// [`HubError::FlowDenied`] unless it may be withheld: then the payload with the fields that
    /// carry the data emptied is returned.
    pub(crate) async fn check_transfer(
        &self,
        caller: &Caller,
        app: &str,
        label: &str,
        payload_json: &str,
        options: FlowOptions<'_>,
    ) -> Result<Option<String>, HubError> {
        let entry = self.app(app).await?;
        let sources: Vec<Value> = options.carried.iter().map(|source| Value::from(source.app.as_str())).collect();
        let transfer = self.audit.write(
            "transfer",
            fields([
                ("principal", Value::from(caller.principal.as_str())),
                ("session", Value::from(caller.session.as_str())),
                ("app", Value::from(app)),
                ("via", Value::from(label)),
                ("sources", Value::from(sources)),
                ("arguments", self.audit.arguments(payload_json)),
            ]),
        )?;
        self.check_flows(caller, transfer, &entry, label, payload_json, options).await
    }

    /// Decides every flow into a call, one source app at a time. Returns the arguments with the
    /// withheld fields emptied, or `None` when nothing was withheld.
    pub(super) async fn check_flows(
        &self,
        caller: &Caller,
        call: u64,
        entry: &AppEntry,
        tool: &str,
        arguments_json: &str,
        options: FlowOptions<'_>,
    ) -> Result<Option<String>, HubError> {
        let mut open = Open { carried: options.carried.to_vec(), cleared: Vec::new(), options };
        let mut withheld: Option<String> = None;
        // Each round clears a source app or removes its data from the arguments, so the loop ends.
        loop {
            let current = withheld.as_deref().unwrap_or(arguments_json);
            match self.check_flow(caller, call, entry, tool, current, &open).await? {
                Checked::Clear => return Ok(withheld),
                Checked::Allowed(source) => open.cleared.push(source),
                Checked::Withhold { source, fields } => {
                    withheld = Some(empty_fields(current, &fields));
                    open.carried.retain(|carried| carried.app != source);
                }
            }
        }
    }

    /// Runs the flow guard on a call and, when it finds a flow from a source that is still open,
    /// consults the broker. The decision is recorded before it takes effect.
    async fn check_flow(
        &self,
        caller: &Caller,
        call: u64,
        entry: &AppEntry,
        tool: &str,
        arguments_json: &str,
        open: &Open<'_>,
    ) -> Result<Checked, HubError> {
        let options = open.options;
        let manifest = &entry.manifest;

        let is_open = |app: &str| app != manifest.name && !open.cleared.iter().any(|done| done == app);
        let mut session = self.sessions.provenance(&caller.principal, &caller.session).await;
        session.retain(|result| is_open(&result.app));

        let target = guard::Target {
            app: &manifest.name,
            tool,
            destructive: manifest.is_destructive(tool),
            egress: manifest.network.mode.has_egress(),
        };
        let referenced = || {
            let source = open.carried.iter().find(|source| is_open(&source.app))?;
            Some(guard::Flow { source: source.app.clone(), rule: guard::Rule::Reference })
        };
        let Some(flow) = guard::check(self.config.flow.rules, &session, target, arguments_json).or_else(referenced) else {
            return Ok(Checked::Clear);
        };

        // The fields that carry the source's data: those the hub filled with it, and those that
        // repeat its results.
        let mut carrying: Vec<String> = open
            .carried
            .iter()
            .filter(|source| source.app == flow.source)
            .flat_map(|source| source.fields.iter().cloned())
            .collect();
        for field in guard::verbatim_fields(&session, &flow.source, arguments_json) {
            if !carrying.contains(&field) {
                carrying.push(field);
            }
        }

        let flow_call = FlowCall {
            caller,
            call,
            flow: &flow,
            target: &manifest.name,
            tool,
            destructive: target.destructive,
            arguments_json,
            fields: &carrying,
            notices: options.notices,
        };
        let decision = self.broker.decide(flow_call).await?;
        let denial = decision.denial();
        let withheld = denial.is_some()
            && options.withhold
            && flow.rule != guard::Rule::Confidential
            && !carrying.is_empty()
            && carrying.iter().all(|field| !field.is_empty());
        let report = FlowReport {
            source: flow.source.clone(),
            target: manifest.name.clone(),
            tool: tool.to_string(),
            rule: flow.rule,
            arguments: arguments_json.to_string(),
            fields: carrying,
            allowed: decision.allowed(),
            by: decision.by(),
            reason: denial
                .as_ref()
                .map(|denial| format!("{}, and {denial}", flow.rule.explain(&flow.source)))
                .unwrap_or_default(),
            withheld,
        };

        self.record_decision(caller, call, &report, decision.request()).await?;
        if let Some(notices) = options.notices {
            let _ = notices.send(FlowNotice::Decided(report.clone()));
        }

        let Some(denial) = denial else { return Ok(Checked::Allowed(flow.source)) };
        if withheld {
            return Ok(Checked::Withhold { source: flow.source, fields: report.fields });
        }
        Err(HubError::FlowDenied(Box::new(FlowDenial {
            source_app: flow.source.clone(),
            target: manifest.name.clone(),
            tool: tool.to_string(),
            reason: flow.rule.explain(&flow.source),
            decision: denial,
        })))
    }

    /// Writes a flow decision to the audit log, durably, before it takes effect.
    async fn record_decision(&self, caller: &Caller, call: u64, report: &FlowReport, request: &str) -> Result<(), HubError> {
        let record = fields([
            ("call", Value::from(call)),
            ("principal", Value::from(caller.principal.as_str())),
            ("session", Value::from(caller.session.as_str())),
            ("source", Value::from(report.source.as_str())),
            ("target", Value::from(report.target.as_str())),
            ("tool", Value::from(report.tool.as_str())),
            ("rule", Value::from(report.rule.as_str())),
            ("fields", Value::from(report.fields.clone())),
            ("decision", Value::from(if report.allowed { "allow" } else { "deny" })),
            ("withheld", Value::from(report.withheld)),
            ("by", Value::from(report.by.as_str())),
            ("request", Value::from(request)),
        ]);
        self.audit.record("flow_decision", record).await?;
        tracing::info!(
            source = %report.source,
            target = %report.target,
            tool = %report.tool,
            rule = report.rule.as_str(),
            by = %report.by,
            allowed = report.allowed,
            withheld = report.withheld,
            "flow decided"
        );
        Ok(())
    }
}
/// The state of one call's flow checks: the data of other apps that the hub placed and did not
/// withhold, the source apps allowed so far, and the call's options.
struct Open<'a> {
    carried: Vec<Carried>,
    cleared: Vec<String>,
    options: FlowOptions<'a>,
}

/// Returns the arguments with each field that a JSON Pointer in `fields` names set to "".
fn empty_fields(arguments_json: &str, fields: &[String]) -> String {
    // Arguments that are not JSON carry their data in the field "", which is never withheld, so
    // this branch only guards against a caller that breaks that rule: it withholds everything.
    let Ok(mut value) = serde_json::from_str::<Value>(arguments_json) else {
        return String::new();
    };
    for field in fields {
        if let Some(slot) = value.pointer_mut(field) {
            *slot = Value::from("");
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emptied_fields_keep_the_rest() {
        let arguments = r#"{"to": "Lisbon", "notes": ["a", "secret"], "x": {"y": "secret"}}"#;
        let emptied = empty_fields(arguments, &["/notes/1".to_string(), "/x/y".to_string()]);
        let value: Value = serde_json::from_str(&emptied).expect("json");
        assert_eq!(value, serde_json::json!({"to": "Lisbon", "notes": ["a", ""], "x": {"y": ""}}));
    }
}
