//! `berth ps [--format table|json] ID [PS_ARGS...]`: the processes of a container.
//!
//! `json` prints the pids in the container's cgroup (sub-cgroups included) as a JSON array.
//! `table` runs the host's ps(1) with PS_ARGS (default `-ef`) and keeps its header plus the lines
//! whose PID column (found by name in the header, as runc does) is one of those pids.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cgroups::Cgroup;
use crate::cli::{OutputFormat, PsArgs};
use crate::container::Container;

pub fn run(root: &Path, a: &PsArgs) -> Result<()> {
    let c = Container::load(root, &a.id)?;
    let pids = Cgroup::open(&c.state.cgroup)?
        .pids()
        .context("listing the container's processes")?;
    let out = match a.format {
        OutputFormat::Json => serde_json::to_string(&pids)? + "\n",
        OutputFormat::Table => {
            let args: Vec<&str> = if a.ps_args.is_empty() {
                vec!["-ef"]
            } else {
                a.ps_args.iter().map(String::as_str).collect()
            };
            let ps = Command::new("ps")
                .args(&args)
                .output()
                .with_context(|| format!("running ps {}", args.join(" ")))?;
            if !ps.status.success() {
                bail!(
                    "ps {} failed ({}): {}",
                    args.join(" "),
                    ps.status,
                    String::from_utf8_lossy(&ps.stderr).trim()
                );
            }
            filter_table(&String::from_utf8_lossy(&ps.stdout), &pids)?
        }
    };
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("writing to stdout")
}

/// ps(1)'s header and the lines of `pids`.
pub fn filter_table(ps_output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = ps_output.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.split_whitespace().position(|f| f == "PID").context(
        "couldn't find the PID column in the ps output (are the ps options missing it?)",
    )?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .with_context(|| format!("unable to parse the pid {field:?} in ps line {line:?}"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_header_and_the_container_lines() {
        let ps = "UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep 10\nroot  420    42 sh -c x\n";
        assert_eq!(
            filter_table(ps, &[42]).unwrap(),
            "UID   PID  PPID CMD\nroot   42     1 sleep 10\n"
        );
        // the PID column is found by name wherever it is
        let ps = "  PID COMMAND\n   42 sleep\n    7 x\n";
        assert_eq!(filter_table(ps, &[7]).unwrap(), "  PID COMMAND\n    7 x\n");
    }

    #[test]
    fn without_a_pid_column_it_fails() {
        assert!(filter_table("COMMAND\nsleep\n", &[1]).is_err());
        assert!(filter_table("PID CMD\nabc x\n", &[1]).is_err());
    }
}
