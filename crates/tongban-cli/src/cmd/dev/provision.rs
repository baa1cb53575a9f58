//! What `tongban dev` keeps in its directory, created on a first run and
//! reused and brought up to date on later ones: the sandbox's layout (CA
//! and certificates under `certs/`, `federation.toml` with this run's
//! endpoints, one config per node) plus what a person needs to try things
//! by hand (client profiles under `profiles/`, sample files under
//! `samples/`). The nodes' data under `data/` is never touched.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use tongban_pki::Principal;
use tongban_sandbox::{
    Builder, HANTAI, Ports, Provisioned, SHANGZHOU, Sandbox, SandboxError, TRUST_DOMAIN, YANTA,
    auditor, clerk, reviewer,
};

use super::fixtures::{RESULT_FILE, result_document, sample_materials};

/// The three counties, in port order (P, P+1, P+2).
pub(super) const COUNTIES: [&str; 3] = [HANTAI, YANTA, SHANGZHOU];

/// The people with a certificate and a profile.
fn users() -> Vec<Principal> {
    vec![
        clerk(HANTAI, "wang"),
        clerk(SHANGZHOU, "zhou"),
        reviewer(YANTA, "li"),
        auditor(None, "zhao"),
    ]
}

/// The client profiles: file stem, county of the node, certificate stem, who.
const PROFILES: [(&str, &str, &str, &str); 4] = [
    (
        "clerk-610702",
        HANTAI,
        "clerk-610702-wang",
        "clerk wang of 汉台区 (610702)",
    ),
    (
        "clerk-611002",
        SHANGZHOU,
        "clerk-611002-zhou",
        "clerk zhou of 商州区 (611002)",
    ),
    (
        "reviewer-610113",
        YANTA,
        "reviewer-610113-li",
        "reviewer li of 雁塔区 (610113)",
    ),
    ("auditor", HANTAI, "auditor-zhao", "province auditor zhao"),
];

/// Lays the federation out in `dir` on ports from `base_port`, its nodes
/// to run on `runtime`. A taken port is refused before anything is written.
pub(super) fn federation(
    dir: &Path,
    base_port: u16,
    runtime: tokio::runtime::Handle,
) -> Result<Sandbox, SandboxError> {
    Builder::new()
        .dir(dir)
        .counties(&COUNTIES)
        .ports(Ports::From(base_port))
        .runtime(runtime)
        .users(users())
        .validity(3650, 365)
        .written_by("`tongban dev`")
        .build()
}

/// Whether `dir` holds no federation yet (asked before laying it out).
pub(super) fn is_fresh(dir: &Path) -> bool {
    !(dir.join("federation.toml").exists() && dir.join("certs").join("ca.crt").exists())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the client profiles and the sample files.
pub(super) fn extras(sandbox: &Sandbox) -> Result<()> {
    let dir = sandbox.root();
    let profiles = dir.join("profiles");
    fs::create_dir_all(&profiles)
        .with_context(|| format!("cannot create {}", profiles.display()))?;
    for (file, county, cert, who) in PROFILES {
        let text = format!(
            "# Client profile of {who}, written by `tongban dev`.\n\
             # Use it with --profile FILE or TONGBAN_PROFILE=FILE; paths are relative to this file.\n\
             node = \"{}\"\n\
             ca = \"../certs/ca.crt\"\n\
             cert = \"../certs/{cert}.crt\"\n\
             key = \"../certs/{cert}.key\"\n",
            sandbox.endpoint(county)
        );
        write(&profiles.join(format!("{file}.toml")), text.as_bytes())?;
    }

    let samples = dir.join("samples");
    fs::create_dir_all(&samples).with_context(|| format!("cannot create {}", samples.display()))?;
    for (_, file, bytes) in sample_materials() {
        write(&samples.join(file), &bytes)?;
    }
    write(&samples.join(RESULT_FILE), &result_document())
}

/// Says what was created or reused.
pub(super) fn announce(dir: &Path, fresh: bool, done: Provisioned) {
    let certs = dir.join("certs");
    if fresh {
        println!(
            "  ✓ created a CA for {TRUST_DOMAIN} and {} certificates in {}",
            done.issued,
            certs.display()
        );
    } else if done.issued > 0 {
        println!(
            "  ✓ reusing the federation in {} (renewed {} certificates)",
            dir.display(),
            done.issued
        );
    } else {
        println!(
            "  ✓ reusing the federation in {} (its certificates, data and cases)",
            dir.display()
        );
    }
    println!(
        "  ✓ wrote {}, 3 node configs and 4 client profiles",
        dir.join("federation.toml").display()
    );
}
