//! `host approvals list`, `host approve`, `host reject`: the operator's
//! decisions on tool calls waiting for approval (docs/STATE.md,
//! "Approvals"), made in [`Scope::Operator`] scope.

use super::durable::clip;
use super::error::CliError;
use super::{GlobalArgs, open_store};
use host::approvals::{self, ApprovalError};
use host::journal::Decision;
use host::store::{Scope, Store};
use std::io::Write;
use std::process::ExitCode;

const OPERATOR: &Scope = &Scope::Operator;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// Tool calls waiting for a decision
    List {
        /// Only this run's
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct ApproveArgs {
    pub run_id: String,
    /// The call: its key from `host approvals list`, or its call id when
    /// that names one pending call
    #[arg(value_name = "CALL")]
    pub call_id: String,
    /// Who decided (recorded in the journal)
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RejectArgs {
    pub run_id: String,
    /// The call: its key from `host approvals list`, or its call id when
    /// that names one pending call
    #[arg(value_name = "CALL")]
    pub call_id: String,
    /// Why; the model receives it as the tool's result
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who decided (recorded in the journal)
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

pub(super) async fn approvals(
    global: &GlobalArgs,
    cmd: ApprovalsCommand,
) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    let ApprovalsCommand::List { run, json } = cmd;
    let pending = match run {
        Some(id) => approvals::pending(store.as_ref(), OPERATOR, &id).await?,
        None => approvals::pending_all(store.as_ref(), OPERATOR).await?,
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&pending)?)?;
    } else {
        writeln!(
            out,
            "{:<26}  {:<32}  {:<20}  {:<14}  ARGUMENTS",
            "RUN", "CALL (KEY)", "TOOL", "DIGEST"
        )?;
        for p in &pending {
            let digest = p.digest.strip_prefix("sha256:").unwrap_or(&p.digest);
            writeln!(
                out,
                "{:<26}  {:<32}  {:<20}  {:<14}  {}",
                p.run_id,
                p.key,
                p.tool,
                digest.get(..12).unwrap_or(digest),
                clip(&p.arguments)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    store: &dyn Store,
    run_id: &str,
    call_id: &str,
    decision: Decision,
    by: Option<&str>,
) -> Result<ExitCode, CliError> {
    let approved = decision.approved;
    match approvals::decide(store, OPERATOR, run_id, call_id, decision, by).await {
        Ok(()) => {
            eprintln!(
                "call {call_id} of run {run_id} {}; continue it with `host resume {run_id}` unless it is waiting with --wait-approval",
                if approved { "approved" } else { "rejected" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (ApprovalError::NoSuchCall { .. } | ApprovalError::Ambiguous { .. })) => {
            Err(CliError::bad_input(e.to_string()))
        }
        Err(e) => Err(CliError::failed(e.to_string())),
    }
}

pub(super) async fn approve(global: &GlobalArgs, args: ApproveArgs) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    decide(
        store.as_ref(),
        &args.run_id,
        &args.call_id,
        Decision::approve(),
        args.by.as_deref(),
    )
    .await
}

pub(super) async fn reject(global: &GlobalArgs, args: RejectArgs) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    decide(
        store.as_ref(),
        &args.run_id,
        &args.call_id,
        Decision::reject(args.reason.clone()),
        args.by.as_deref(),
    )
    .await
}
