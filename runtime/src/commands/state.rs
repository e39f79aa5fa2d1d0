//! `berth state ID`: the runtime-spec state JSON, indented as runc prints it.

use std::path::Path;

use anyhow::Result;

use crate::container::Container;

pub fn run(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = c.status();
    println!("{}", serde_json::to_string_pretty(&c.oci_state(status))?);
    Ok(())
}
