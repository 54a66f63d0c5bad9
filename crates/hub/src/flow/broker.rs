//! The broker: decides whether a flow the guard found may go ahead.
//!
//! Decisions come from the static `[[flow.allow]]` rules of hub.toml. With no rule that matches,
//! the flow is denied, because no live approver is attached.

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

/// A decision about one flow, and what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A static rule allowed the flow. The value is the rule's index in hub.toml.
    AllowedByRule(usize),
    /// No rule matched and no approver is attached.
    DeniedNoApprover,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::AllowedByRule(_))
    }

    /// Returns the decision's source for the audit log.
    pub fn by(&self) -> String {
        match self {
            Decision::AllowedByRule(index) => format!("flow.allow[{index}]"),
            Decision::DeniedNoApprover => "no approver".to_string(),
        }
    }
}

/// Decides a flow from `principal` into `target`/`tool`.
pub fn decide(
    rules: &[AllowRule],
    principal: &str,
    flow: &Flow,
    target: &str,
    tool: &str,
) -> Decision {
    match rules
        .iter()
        .position(|rule| rule.matches(principal, flow, target, tool))
    {
        Some(index) => Decision::AllowedByRule(index),
        None => Decision::DeniedNoApprover,
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
    fn no_rule_denies() {
        assert_eq!(
            decide(&[], "uid:0", &flow(), "repo_public", "create_pr"),
            Decision::DeniedNoApprover
        );
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
            decide(&rules, "uid:1000", &flow(), "repo_public", "create_pr"),
            Decision::AllowedByRule(1)
        );
        assert_eq!(
            decide(&rules, "uid:0", &flow(), "repo_public", "create_pr"),
            Decision::DeniedNoApprover
        );
    }
}
