//! `bulkhead check`: probes the isolation primitives of this host in-process, without the hub.

use std::process::ExitCode;

use anyhow::Result;
use bulkhead_sandbox::probe::{self, PrimitiveStatus};
use serde::Serialize;

use crate::output::Output;
use crate::table::Table;

#[derive(Serialize)]
struct CheckJson {
    primitives: Vec<PrimitiveStatus>,
    /// Keys of the primitives that every spoke needs and this host lacks.
    missing_required: Vec<&'static str>,
}

/// Prints every primitive and exits 1 when a primitive that spokes need is missing.
pub fn run(output: &Output) -> Result<ExitCode> {
    let primitives = probe::probe_host();
    let missing: Vec<&PrimitiveStatus> = primitives
        .iter()
        .filter(|status| status.required && !status.available)
        .collect();
    let code = if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };

    if output.json {
        let missing_required = missing.iter().map(|status| status.key).collect();
        output.print_json(&CheckJson {
            primitives: primitives.clone(),
            missing_required,
        })?;
        return Ok(code);
    }

    let mut table = Table::new(&["PRIMITIVE", "STATUS", "NEEDED BY SPOKES", "DETAIL"]);
    for status in &primitives {
        let state = if status.available {
            "available"
        } else {
            "missing"
        };
        let needed = if status.required { "yes" } else { "no" };
        table.push(vec![
            status.name.to_string(),
            state.to_string(),
            needed.to_string(),
            status.detail.clone(),
        ]);
    }
    output.print_table(&table, true)?;
    if missing.is_empty() {
        output.print_text("every primitive that spokes need is available")?;
    } else {
        let names: Vec<&str> = missing.iter().map(|status| status.name).collect();
        output.print_text(&format!(
            "missing for spokes: {}; no spoke can start on this host until the kernel offers them",
            names.join(", ")
        ))?;
    }
    Ok(code)
}
