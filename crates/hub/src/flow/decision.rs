//! The static `[[flow.allow]]` rules, and the decisions the broker makes about flows.

use std::time::Duration;

use super::approvals::Choice;
use super::grants::Scope;
use super::guard::Flow;

/// One `[[flow.allow]]` rule of hub.toml. An empty field matches any value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowRule {
    pub principal: String,
    pub source: String,
    pub target: String,
    pub tool: String,
}

impl AllowRule {
    fn matches(&self, principal: &str, flow: &Flow, target: &str, tool: &str) -> bool {
        let field = |rule: &str, value: &str| rule.is_empty() || rule == value;
        field(&self.principal, principal)
            && field(&self.source, &flow.source)
            && field(&self.target, target)
            && field(&self.tool, tool)
    }
}

/// Returns the index of the first rule that allows a flow from `principal` into `target`/`tool`.
pub fn matching_rule(
    rules: &[AllowRule],
    principal: &str,
    flow: &Flow,
    target: &str,
    tool: &str,
) -> Option<usize> {
    rules
        .iter()
        .position(|rule| rule.matches(principal, flow, target, tool))
}

/// A decision about one flow, and what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A stored grant allowed the flow.
    AllowedByGrant { grant: String, scope: Scope },
    /// A static rule allowed the flow. The value is the rule's index in hub.toml.
    AllowedByRule(usize),
    /// A live approver allowed the flow.
    Approved { request: String, approver: String, choice: Choice },
    /// No grant or rule allowed the flow and no approver that may decide it is attached.
    DeniedNoApprover,
    /// No approver decided within `[flow] approval_timeout`.
    DeniedTimeout { request: String, timeout: Duration },
    /// A live approver denied the flow.
    DeniedByApprover { request: String, approver: String },
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(
            self,
            Decision::AllowedByGrant { .. } | Decision::AllowedByRule(_) | Decision::Approved { .. }
        )
    }

    /// Returns the decision's source for the audit log.
    pub fn by(&self) -> String {
        match self {
            Decision::AllowedByGrant { grant, scope } => format!("grant {grant} ({})", scope.as_str()),
            Decision::AllowedByRule(index) => format!("flow.allow[{index}]"),
            Decision::Approved { approver, choice, .. } => format!("approver {approver} ({})", choice.as_str()),
            Decision::DeniedNoApprover => "no approver".to_string(),
            Decision::DeniedTimeout { .. } => "timed out".to_string(),
            Decision::DeniedByApprover { approver, .. } => format!("approver {approver} (deny)"),
        }
    }

    /// Returns the id of the approval request behind the decision, or "" when there was none.
    pub fn request(&self) -> &str {
        match self {
            Decision::Approved { request, .. }
            | Decision::DeniedTimeout { request, .. }
            | Decision::DeniedByApprover { request, .. } => request,
            _ => "",
        }
    }

    /// Describes a denial and what to do about it, for the PERMISSION_DENIED message. Returns
    /// `None` for a decision that allows the flow.
    pub fn denial(&self) -> Option<String> {
        const RULE_HINT: &str = "add a [[flow.allow]] rule to hub.toml to allow this flow";
        match self {
            Decision::DeniedNoApprover => Some(format!(
                "no approver is attached; run `bulkhead approvals` to decide such flows as they \
                 happen, or {RULE_HINT}"
            )),
            Decision::DeniedTimeout { request, timeout } => Some(format!(
                "no approver decided request {request} within {}, so it timed out; decide sooner, \
                 raise [flow] approval_timeout, or {RULE_HINT}",
                crate::units::format_duration(*timeout)
            )),
            Decision::DeniedByApprover { request, approver } => Some(format!(
                "the approver {approver} denied request {request}; ask the approver, or {RULE_HINT}"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::guard::Rule;

    fn flow() -> Flow {
        Flow {
            source: "repo_private".into(),
            rule: Rule::Confidential,
        }
    }

    #[test]
    fn no_rule_matches_nothing() {
        assert_eq!(matching_rule(&[], "uid:0", &flow(), "repo_public", "create_pr"), None);
    }

    #[test]
    fn matching_rule_allows_and_empty_fields_match_all() {
        let rules = [
            AllowRule {
                tool: "list_issues".into(),
                ..AllowRule::default()
            },
            AllowRule {
                principal: "uid:1000".into(),
                target: "repo_public".into(),
                ..AllowRule::default()
            },
        ];
        assert_eq!(
            matching_rule(&rules, "uid:1000", &flow(), "repo_public", "create_pr"),
            Some(1)
        );
        assert_eq!(matching_rule(&rules, "uid:0", &flow(), "repo_public", "create_pr"), None);
    }

    #[test]
    fn denials_name_their_cause() {
        let timeout = Decision::DeniedTimeout { request: "ab12cd34".into(), timeout: Duration::from_secs(60) };
        let message = timeout.denial().expect("a denial");
        assert!(message.contains("within 1m, so it timed out"), "{message}");
        let denied = Decision::DeniedByApprover { request: "ab12cd34".into(), approver: "uid:0".into() };
        assert!(denied.denial().expect("a denial").starts_with("the approver uid:0 denied request ab12cd34"));
        assert!(Decision::DeniedNoApprover.denial().expect("a denial").starts_with("no approver is attached"));
        assert_eq!(Decision::AllowedByRule(0).denial(), None);
    }
}
