//! The layout on disk: [`Builder`] binds the nodes' sockets first (so a
//! taken port is refused before anything is written), then writes the
//! directory with their endpoints, the certificates and one config per node
//! in the root, the way a user following the docs would lay them out.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use tokio::runtime::Handle;
use tongban_node::Clock;
use tongban_pki::Principal;
use tongban_pki::issue::CA_CERT;

use crate::SandboxError;
use crate::certs::provision;
use crate::directory::{self, County};
use crate::sandbox::{Node, Root, Sandbox};
use crate::socket::Held;

/// Which ports the nodes listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Any free port (`127.0.0.1:0`), the default: tests and the bench.
    Any,
    /// `P, P+1, …` in the order of the counties (`tongban dev --base-port`).
    From(u16),
}

/// How a sandbox is laid out; [`Builder::build`] lays it out.
pub struct Builder {
    root: Option<PathBuf>,
    temp_prefix: String,
    template: String,
    counties: Option<Vec<String>>,
    ports: Ports,
    node_extra: String,
    carriers: bool,
    admin: bool,
    clock: Option<Clock>,
    runtime: Option<Handle>,
    users: Vec<Principal>,
    validity: (u32, u32),
    written_by: String,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            root: None,
            temp_prefix: "tongban-sandbox-".into(),
            template: directory::EXAMPLE.into(),
            counties: None,
            ports: Ports::Any,
            node_extra: String::new(),
            carriers: false,
            admin: false,
            clock: None,
            runtime: None,
            users: Vec::new(),
            validity: (3650, 365),
            written_by: "the tongban sandbox".into(),
        }
    }
}

impl Builder {
    /// The example federation, every county, any ports, in a new temp dir.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lays the sandbox out in `dir` (created if needed) and reuses what an
    /// earlier run left there: the directory file, the CA, certificates
    /// that are still good, the nodes' data.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = Some(dir.into());
        self
    }

    /// The prefix of the temp dir when no [`Builder::dir`] is given.
    pub fn temp_prefix(mut self, prefix: &str) -> Self {
        self.temp_prefix = prefix.into();
        self
    }

    /// The directory to start from when the root has no `federation.toml`.
    pub fn directory(mut self, text: &str) -> Self {
        self.template = text.into();
        self
    }

    /// Runs only these counties of the directory, in this order.
    pub fn counties(mut self, codes: &[&str]) -> Self {
        self.counties = Some(codes.iter().map(|c| (*c).to_owned()).collect());
        self
    }

    /// The nodes' ports.
    pub fn ports(mut self, ports: Ports) -> Self {
        self.ports = ports;
        self
    }

    /// TOML appended to every node config (tables such as `[delivery]`).
    pub fn node_config(mut self, extra: &str) -> Self {
        self.node_extra.push_str(extra);
        self
    }

    /// Holds a carrier-push socket for each node and serves it.
    pub fn carriers(mut self, on: bool) -> Self {
        self.carriers = on;
        self
    }

    /// Holds an admin socket (`[admin] listen`: metrics and health) for
    /// each node and serves it.
    pub fn admin(mut self, on: bool) -> Self {
        self.admin = on;
        self
    }

    /// The clock every node reads (instead of the system's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The runtime the nodes run on (by default the one `build` runs in).
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Also keeps certificates for these users under `certs/`.
    pub fn users(mut self, principals: impl IntoIterator<Item = Principal>) -> Self {
        self.users.extend(principals);
        self
    }

    /// Days of validity of a new CA and of the certificates issued.
    pub fn validity(mut self, ca_days: u32, cert_days: u32) -> Self {
        self.validity = (ca_days, cert_days);
        self
    }

    /// Who the comment atop each node config says wrote it.
    pub fn written_by(mut self, who: &str) -> Self {
        self.written_by = who.into();
        self
    }

    /// Binds every node's socket, then writes the directory with their
    /// endpoints, the certificates and the node configs. No node runs yet:
    /// their ports refuse connections until [`Sandbox::start`].
    pub fn build(self) -> Result<Sandbox, SandboxError> {
        let runtime = match self.runtime {
            Some(h) => h,
            None => Handle::try_current().map_err(|_| SandboxError::NoRuntime)?,
        };
        let root = match self.root {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| SandboxError::io("failed to create", &dir, e))?;
                Root::Dir(dir)
            }
            None => Root::Temp(
                tempfile::Builder::new()
                    .prefix(&self.temp_prefix)
                    .tempdir()
                    .map_err(|e| {
                        SandboxError::io("failed to create a temp dir in", std::env::temp_dir(), e)
                    })?,
            ),
        };
        let dir = root.path().to_owned();
        let directory_path = dir.join("federation.toml");
        let existing = match std::fs::read_to_string(&directory_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(SandboxError::io("failed to read", &directory_path, e)),
        };
        let text = existing.clone().unwrap_or(self.template);
        let (trust_domain, listed) = directory::counties(&text, &directory_path)?;
        let chosen: Vec<County> = match &self.counties {
            None => listed,
            Some(codes) => codes
                .iter()
                .map(|code| {
                    listed
                        .iter()
                        .find(|c| c.code == *code)
                        .cloned()
                        .ok_or_else(|| SandboxError::Directory {
                            path: directory_path.clone(),
                            reason: format!("no [[county]] with code {code}"),
                        })
                })
                .collect::<Result<_, _>>()?,
        };

        // Sockets first: a taken port is refused before anything is written.
        let mut nodes = Vec::new();
        let count = chosen.len();
        for (i, county) in chosen.into_iter().enumerate() {
            let code = county.code.clone();
            let port = match self.ports {
                Ports::Any => 0,
                Ports::From(base) => u16::try_from(usize::from(base) + i)
                    .ok()
                    .filter(|_| base != 0)
                    .ok_or(SandboxError::PortRange { base, count })?,
            };
            let socket = Held::bind((Ipv4Addr::LOCALHOST, port).into())?;
            let carrier = if self.carriers {
                Some(Held::bind((Ipv4Addr::LOCALHOST, 0).into())?)
            } else {
                None
            };
            let admin = if self.admin {
                Some(Held::bind((Ipv4Addr::LOCALHOST, 0).into())?)
            } else {
                None
            };
            nodes.push(Node::new(
                county,
                dir.join(format!("node-{code}.toml")),
                dir.join("data").join(&code),
                socket,
                carrier,
                admin,
            ));
        }

        let endpoints: BTreeMap<String, String> = nodes
            .iter()
            .map(|n| (n.county.code.clone(), format!("https://{}", n.addr)))
            .collect();
        let rewritten = directory::set_endpoints(&text, &directory_path, &endpoints)?;
        if existing.as_deref() != Some(rewritten.as_str()) {
            write(&directory_path, &rewritten)?;
        }

        let certs = dir.join("certs");
        let mut principals = Vec::new();
        for n in &nodes {
            let county = n.county.code.parse().map_err(|e| SandboxError::Directory {
                path: directory_path.clone(),
                reason: format!("county code {:?}: {e}", n.county.code),
            })?;
            principals.push(Principal::Node { county });
        }
        principals.extend(self.users);
        let (pki, provisioned) = provision(&certs, &trust_domain, &principals, self.validity)?;

        for n in &nodes {
            let code = &n.county.code;
            let admin = match n.admin_addr() {
                Some(addr) => format!("\n[admin]\nlisten = \"{addr}\"\n"),
                None => String::new(),
            };
            write(
                &n.config,
                &format!(
                    "# Node config of {name} ({code}), written by {who} on every run.\n\
                     # Paths are relative to this file.\n\
                     county = \"{code}\"\n\
                     listen = \"{addr}\"\n\
                     data_dir = \"data/{code}\"\n\
                     directory = \"federation.toml\"\n\
                     \n\
                     [tls]\n\
                     ca = \"certs/{CA_CERT}\"\n\
                     cert = \"certs/node-{code}.crt\"\n\
                     key = \"certs/node-{code}.key\"\n{admin}{extra}",
                    name = n.county.name,
                    who = self.written_by,
                    addr = n.addr,
                    extra = self.node_extra,
                ),
            )?;
        }

        Sandbox::new(root, pki, provisioned, nodes, self.clock, runtime)
    }
}

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(|e| SandboxError::io("failed to write", path, e))
}
