//! `berth list [--format table|json] [--quiet]`: every container under --root, sorted by id.
//!
//! The table is runc's (ID PID STATUS BUNDLE CREATED OWNER, aligned like Go's tabwriter with
//! minimum width 12 and padding 3); json is an array of state objects (as `state` prints, plus the
//! owner); --quiet prints the ids. A directory without a state file (a `create` in progress or one
//! that died early) is skipped.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::OutputFormat;
use crate::container::{Container, OciState, Status};
use crate::state;

pub fn run(root: &Path, format: OutputFormat, quiet: bool) -> Result<()> {
    let containers = load_all(root)?;
    let out = if quiet {
        containers
            .iter()
            .map(|(c, ..)| format!("{}\n", c.state.id))
            .collect()
    } else {
        let states: Vec<OciState<'_>> = containers
            .iter()
            .map(|(c, status, owner)| {
                let mut st = c.oci_state(*status);
                st.owner = owner;
                st
            })
            .collect();
        match format {
            OutputFormat::Json => serde_json::to_string(&states)? + "\n",
            OutputFormat::Table => table(&states),
        }
    };
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("writing to stdout")
}

/// The containers under `root` with their status and owner (the user owning the state directory).
fn load_all(root: &Path) -> Result<Vec<(Container, Status, String)>> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", root.display())),
    };
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.with_context(|| format!("listing {}", root.display()))?;
        if ent.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(ent.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let dir = root.join(&name);
        if !dir.join(state::STATE_FILE).exists() {
            crate::debug!("list: skipping {}: no state yet", dir.display());
            continue;
        }
        let c = match Container::load(root, &name) {
            Ok(c) => c,
            // Deleted meanwhile, or not a container directory: skip it like runc, but say so.
            Err(e) => {
                crate::warn!("list: skipping {}: {e:#}", dir.display());
                continue;
            }
        };
        let owner = match std::fs::metadata(&dir) {
            Ok(m) => owner_name(m.uid()),
            Err(_) => continue,
        };
        let status = c.status();
        out.push((c, status, owner));
    }
    Ok(out)
}

/// A user name, or `#UID` when the user database has none (as runc).
fn owner_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("#{uid}"),
    }
}

fn table(states: &[OciState<'_>]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for st in states {
        rows.push([
            st.id.to_string(),
            st.pid.to_string(),
            st.status.clone(),
            st.bundle.display().to_string(),
            st.created.to_string(),
            st.owner.to_string(),
        ]);
    }
    align(&rows)
}

/// Go's tabwriter with minwidth 12, padding 3, padchar ' ': every column but the last is as wide
/// as its widest cell plus 3, at least 12.
fn align<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count() + 3).max(12);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < N {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_like_runc() {
        let rows = [
            ["ID", "PID", "CREATED", "OWNER"].map(String::from),
            ["v1", "18406", "2026-11-23T12:02:30.27076132Z", "root"].map(String::from),
        ];
        // what runc 1.1.5 printed for the same values
        assert_eq!(
            align(&rows),
            "ID          PID         CREATED                         OWNER\n\
             v1          18406       2026-11-23T12:02:30.27076132Z   root\n"
        );
    }
}
