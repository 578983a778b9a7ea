//! Environments in a VPC. Each VPC gets a *router*: a network namespace of its own holding
//! the VPC's bridge (`br0`, with each subnet's router address, its first address after the
//! network's, as on AWS) and an uplink to the host, linked to `nimbus0` like any
//! environment (an isolated bridge port) and masquerading the VPC's traffic behind its own
//! address. An environment of a function in the VPC gets its `eth0` on that bridge, an
//! address from one of the function's subnets (with the VPC's prefix, so the whole VPC is
//! one link) and its default route through the subnet's router address; its security
//! groups become an nftables table inside its own namespace: egress rules on the output
//! hook, ingress rules on the input hook, both stateful, everything else dropped, except the
//! Nimbus endpoint (so the function's SDK works) and its own loopback (its Runtime API).
//!
//! ```text
//!  host: nimbus0 10.213.0.1 ── nb7 (isolated) ═╗
//!  router netns (per VPC):         eth0 10.213.0.7, default via 10.213.0.1, masquerade
//!                                  br0 10.0.1.1/24, 10.0.2.1/24 (the subnets' routers)
//!                                   ├─ v a000105 ═ eth0 10.0.1.5/16 (env A, its nft table)
//!                                   └─ v a000206 ═ eth0 10.0.2.6/16 (env B)
//! ```
//!
//! Different VPCs cannot reach each other: their routers are isolated ports of `nimbus0`, and
//! the host has no route to any VPC's addresses (they live only inside the routers), whatever
//! its forwarding settings. VPCs may overlap each other and the host's networks; only the
//! sandbox subnet itself is refused (the Nimbus endpoint lives there). A router lives as long
//! as the server (its namespace is held by the linker thread); an environment's pair dies with
//! the environment's namespace.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rustix::io::Errno;
use rustix::thread::LinkNameSpaceType;

use super::{link_index, no_ipv6, LinkInfoHost, Maker, Netlink, INSIDE_IF};
use crate::jail::{self, ReturnToNetns};

/// The bridge inside a VPC's router.
const VPC_BRIDGE: &str = "br0";

/// Where environments of a function in a VPC are attached, and what their security groups
/// let through: everything the data plane needs, resolved from the function's VpcConfig.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VpcPlan {
    /// The VPC (one router per VPC).
    pub vpc_id: String,
    /// The VPC's block: an environment's address has its prefix.
    pub vpc_cidr: (Ipv4Addr, u8),
    /// The function's subnets; an environment takes an address in the first with room.
    pub subnets: Vec<(Ipv4Addr, u8)>,
    /// The function's security groups (what changes to their rules retire).
    pub security_groups: Vec<String>,
    /// Traffic the environment may send (its groups' egress rules, together).
    pub egress: Vec<FilterRule>,
    /// Traffic the environment may receive (its groups' ingress rules, together).
    pub ingress: Vec<FilterRule>,
}

/// One security group rule, as the packet filter applies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilterRule {
    pub traffic: Traffic,
    /// The other end's block: where packets go (egress) or come from (ingress).
    pub peer: (Ipv4Addr, u8),
}

/// What a rule lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Traffic {
    /// Every protocol (`-1`).
    All,
    /// TCP to the ports `from..=to`.
    Tcp(u16, u16),
    /// UDP to the ports `from..=to`.
    Udp(u16, u16),
    /// ICMP of a type and code (None: any).
    Icmp { kind: Option<u8>, code: Option<u8> },
    /// Another IP protocol, by number.
    Protocol(u8),
}

/// Finds `nft` where Debian's nftables installs it.
pub fn find_nft() -> Option<PathBuf> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/usr/local/sbin/nft"].iter().map(PathBuf::from).find(|p| p.is_file())
}

fn cidr((net, prefix): (Ipv4Addr, u8)) -> String {
    format!("{net}/{prefix}")
}

fn ports(from: u16, to: u16) -> String {
    if from == to {
        from.to_string()
    } else {
        format!("{from}-{to}")
    }
}

/// One rule as an nftables statement; `dir` is `daddr` (egress) or `saddr` (ingress).
fn statement(rule: &FilterRule, dir: &str) -> String {
    let peer = format!("ip {dir} {}", cidr(rule.peer));
    match rule.traffic {
        Traffic::All => format!("{peer} accept"),
        Traffic::Tcp(from, to) => format!("{peer} tcp dport {} accept", ports(from, to)),
        Traffic::Udp(from, to) => format!("{peer} udp dport {} accept", ports(from, to)),
        Traffic::Icmp { kind: None, .. } => format!("{peer} ip protocol icmp accept"),
        Traffic::Icmp { kind: Some(k), code: None } => format!("{peer} icmp type {k} accept"),
        Traffic::Icmp { kind: Some(k), code: Some(c) } => format!("{peer} icmp type {k} icmp code {c} accept"),
        Traffic::Protocol(p) => format!("{peer} ip protocol {p} accept"),
    }
}

/// An environment's packet filter: its security groups' rules, the Nimbus endpoint at
/// `endpoint`, its loopback; replies to what it sent or accepted; nothing else.
pub(super) fn environment_rules(plan: &VpcPlan, endpoint: (Ipv4Addr, u16)) -> String {
    let mut s = String::from("table inet nimbus {\n  chain egress {\n    type filter hook output priority filter; policy drop;\n");
    s.push_str("    oifname \"lo\" accept\n    ct state established,related accept\n");
    let _ = writeln!(s, "    ip daddr {} tcp dport {} accept", endpoint.0, endpoint.1);
    for r in &plan.egress {
        let _ = writeln!(s, "    {}", statement(r, "daddr"));
    }
    s.push_str("  }\n  chain ingress {\n    type filter hook input priority filter; policy drop;\n");
    s.push_str("    iifname \"lo\" accept\n    ct state established,related accept\n");
    for r in &plan.ingress {
        let _ = writeln!(s, "    {}", statement(r, "saddr"));
    }
    s.push_str("  }\n}\n");
    s
}

/// A router's packet filter: the VPC's traffic leaves masqueraded behind the uplink's
/// address; nothing from the uplink starts a connection into the VPC.
const ROUTER_RULES: &str = "table ip nimbus {
  chain out {
    type nat hook postrouting priority srcnat;
    oifname \"eth0\" masquerade
  }
  chain through {
    type filter hook forward priority filter; policy accept;
    iifname \"eth0\" ct state new drop
  }
}
";

/// Runs `nft -f -` with `script` inside the network namespace `ns`. The child is forked by
/// this thread while it is in `ns`, so it starts there; the thread comes back at once.
fn nft(nft: &Path, host: &OwnedFd, ns: &OwnedFd, script: &str) -> io::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = {
        let _back = ReturnToNetns(host);
        rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
        Command::new(nft)
            .args(["-f", "-"])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", nft.display())))?
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("nft refused the rules ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

/// One VPC's router namespace, held for the server's lifetime.
pub(super) struct Router {
    /// Holds the namespace: it lives as long as this descriptor.
    _ns: OwnedFd,
    /// A route netlink socket opened inside the router's namespace.
    nl: Netlink,
    bridge_index: u32,
    /// Subnet router addresses already on the bridge.
    gateways: HashSet<Ipv4Addr>,
    /// Next host number to try, per subnet (round robin, so a freed address is not reused
    /// at once).
    cursors: HashMap<(Ipv4Addr, u8), u32>,
    /// Its link to the host.
    uplink: LinkInfoHost,
}

fn first(net: Ipv4Addr, prefix: u8) -> u32 {
    u32::from(net) & (u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let prefix = a.1.min(b.1);
    first(a.0, prefix) == first(b.0, prefix)
}

impl Maker {
    /// The router of `vpc`, made (with its uplink and NAT) the first time it is needed.
    fn router(&mut self, vpc: &str, nft_path: &Path) -> io::Result<&mut Router> {
        if !self.routers.contains_key(vpc) {
            let ns = jail::new_netns().map_err(io::Error::other)?;
            let mut nl = {
                let _back = ReturnToNetns(&self.host_netns);
                rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
                // Interfaces made here later (the bridge, every environment's end) have no
                // IPv6, as everywhere else (see `no_ipv6`).
                no_ipv6("default");
                no_ipv6("all");
                std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
                Netlink::open()?
            };
            let mut bridge = LinkMessage::default();
            bridge.header.flags = LinkFlags::Up;
            bridge.header.change_mask = LinkFlags::Up;
            // Its address given, so it stays as environments come and go (see
            // `Netlink::pin_address`): they keep reaching their router.
            bridge.attributes = vec![
                LinkAttribute::IfName(VPC_BRIDGE.into()),
                LinkAttribute::Address(super::fixed_bridge_mac().to_vec()),
                super::bridge_kind(),
            ];
            nl.request(RouteNetlinkMessage::NewLink(bridge), NLM_F_CREATE | NLM_F_EXCL)?;
            nl.set_up(VPC_BRIDGE)?;
            let bridge_index = link_index(&mut nl, VPC_BRIDGE)?;
            let uplink = self.link(&ns)?;
            nft(nft_path, &self.host_netns, &ns, ROUTER_RULES)?;
            tracing::info!(vpc, uplink = %uplink.address, "made the VPC's router");
            let router = Router { _ns: ns, nl, bridge_index, gateways: HashSet::new(), cursors: HashMap::new(), uplink };
            self.routers.insert(vpc.to_string(), router);
        }
        Ok(self.routers.get_mut(vpc).expect("just made"))
    }

    /// Links the environment namespace `env` into its VPC: an address from one of the plan's
    /// subnets on the VPC's bridge, and its security groups as its packet filter.
    pub(super) fn link_vpc(&mut self, env: &OwnedFd, plan: &VpcPlan, endpoint_port: u16) -> io::Result<LinkInfoHost> {
        let nft_path = self.nft.clone().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "nftables' nft is not installed: functions in a VPC cannot have their security groups")
        })?;
        let sandbox = (Ipv4Addr::from(self.network), self.prefix);
        if overlaps(plan.vpc_cidr, sandbox) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("the VPC's block {} overlaps the sandbox subnet {}", cidr(plan.vpc_cidr), cidr(sandbox)),
            ));
        }
        let gateway = self.gateway();
        let host = self.host_netns.try_clone()?;
        let mut inside = {
            let _back = ReturnToNetns(&host);
            rustix::thread::move_into_link_name_space(env.as_fd(), Some(LinkNameSpaceType::Network))?;
            no_ipv6("default");
            Netlink::open()?
        };
        let router = self.router(&plan.vpc_id, &nft_path)?;
        let mut last_err = None;
        for &(net, prefix) in &plan.subnets {
            let base = first(net, prefix);
            let subnet_router = Ipv4Addr::from(base + 1);
            if router.gateways.insert(subnet_router) {
                match router.nl.add_address(router.bridge_index, subnet_router, prefix) {
                    Err(e) if e.raw_os_error() != Some(Errno::EXIST.raw_os_error()) => {
                        router.gateways.remove(&subnet_router);
                        return Err(e);
                    }
                    _ => {}
                }
            }
            // AWS keeps the first four addresses of a subnet and its last.
            let size = 1u32 << (32 - u32::from(prefix));
            let usable = size.saturating_sub(5);
            for _ in 0..usable.min(4096) {
                let cursor = router.cursors.entry((net, prefix)).or_insert(0);
                let n = 4 + *cursor % usable;
                *cursor = cursor.wrapping_add(1);
                let address = Ipv4Addr::from(base + n);
                let name = format!("v{:x}", u32::from(address));
                match router.nl.add_veth(&name, router.bridge_index, env, None) {
                    Ok(()) => {
                        router.nl.set_up(&name)?;
                        inside.set_up(INSIDE_IF)?;
                        let index = link_index(&mut inside, INSIDE_IF)?;
                        inside.add_address(index, address, plan.vpc_cidr.1)?;
                        inside.add_default_route(index, subnet_router)?;
                        nft(&nft_path, &host, env, &environment_rules(plan, (gateway, endpoint_port)))?;
                        tracing::debug!(vpc = %plan.vpc_id, %address, router = %router.uplink.address, "linked an environment into its VPC");
                        return Ok(LinkInfoHost { address, host_interface: name });
                    }
                    Err(e) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => last_err = Some(e),
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free address in the function's subnets")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> VpcPlan {
        VpcPlan {
            vpc_id: "vpc-1".into(),
            vpc_cidr: (Ipv4Addr::new(10, 0, 0, 0), 16),
            subnets: vec![(Ipv4Addr::new(10, 0, 1, 0), 24)],
            security_groups: vec!["sg-1".into()],
            egress: vec![
                FilterRule { traffic: Traffic::Tcp(443, 443), peer: (Ipv4Addr::UNSPECIFIED, 0) },
                FilterRule { traffic: Traffic::Udp(53, 54), peer: (Ipv4Addr::new(10, 0, 0, 2), 32) },
                FilterRule { traffic: Traffic::Icmp { kind: Some(8), code: None }, peer: (Ipv4Addr::new(10, 0, 0, 0), 16) },
            ],
            ingress: vec![FilterRule { traffic: Traffic::All, peer: (Ipv4Addr::new(10, 0, 0, 0), 16) }],
        }
    }

    #[test]
    fn security_groups_become_an_nftables_table() {
        let rules = environment_rules(&plan(), (Ipv4Addr::new(10, 213, 0, 1), 9001));
        let want = "table inet nimbus {
  chain egress {
    type filter hook output priority filter; policy drop;
    oifname \"lo\" accept
    ct state established,related accept
    ip daddr 10.213.0.1 tcp dport 9001 accept
    ip daddr 0.0.0.0/0 tcp dport 443 accept
    ip daddr 10.0.0.2/32 udp dport 53-54 accept
    ip daddr 10.0.0.0/16 icmp type 8 accept
  }
  chain ingress {
    type filter hook input priority filter; policy drop;
    iifname \"lo\" accept
    ct state established,related accept
    ip saddr 10.0.0.0/16 accept
  }
}
";
        assert_eq!(rules, want);
    }

    #[test]
    fn overlap_of_blocks() {
        assert!(overlaps((Ipv4Addr::new(10, 213, 0, 0), 16), (Ipv4Addr::new(10, 213, 5, 0), 24)));
        assert!(overlaps((Ipv4Addr::new(10, 0, 0, 0), 8), (Ipv4Addr::new(10, 213, 0, 0), 16)));
        assert!(!overlaps((Ipv4Addr::new(10, 0, 0, 0), 16), (Ipv4Addr::new(10, 213, 0, 0), 16)));
    }

    /// Two routers (two VPCs), two environments each side, nft applied: an environment
    /// reaches the host through its router, its groups' rules decide which ports, and the
    /// other VPC's environment is out of reach. Needs root and nft.
    #[test]
    fn vpcs_are_routed_filtered_and_apart() {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::time::Duration;
        if !rustix::process::geteuid().is_root() || find_nft().is_none() {
            eprintln!("skipped: needs root and nft");
            return;
        }
        let linker = super::super::Linker::setup("nimbustest1", (Ipv4Addr::new(10, 214, 9, 0), 24), 0, None).unwrap();
        let gw = linker.gateway();
        let open = TcpListener::bind((gw, 0)).unwrap();
        let closed = TcpListener::bind((gw, 0)).unwrap();
        let (open_port, closed_port) = (open.local_addr().unwrap().port(), closed.local_addr().unwrap().port());
        linker.set_endpoint_port(open_port);
        let allow = |port| FilterRule { traffic: Traffic::Tcp(port, port), peer: (Ipv4Addr::UNSPECIFIED, 0) };
        let a_plan = VpcPlan { egress: vec![allow(8080)], ingress: vec![], ..plan() };
        let b_plan = VpcPlan {
            vpc_id: "vpc-2".into(),
            vpc_cidr: (Ipv4Addr::new(10, 50, 0, 0), 16),
            subnets: vec![(Ipv4Addr::new(10, 50, 1, 0), 24)],
            egress: vec![],
            ingress: vec![FilterRule { traffic: Traffic::All, peer: (Ipv4Addr::UNSPECIFIED, 0) }],
            ..plan()
        };
        let (a, _la) = jail::new_netns_with_listener(super::super::RUNTIME_API_PORT).unwrap();
        let (b, _lb) = jail::new_netns_with_listener(super::super::RUNTIME_API_PORT).unwrap();
        let link_a = linker.link_vpc(&a, std::sync::Arc::new(a_plan)).unwrap();
        let link_b = linker.link_vpc(&b, std::sync::Arc::new(b_plan)).unwrap();
        assert_eq!(link_a.address, Ipv4Addr::new(10, 0, 1, 4));
        assert_eq!(link_b.address, Ipv4Addr::new(10, 50, 1, 4));

        let inside = |ns: &OwnedFd, f: Box<dyn FnOnce() -> bool + Send>| -> bool {
            let fd = ns.try_clone().unwrap();
            std::thread::spawn(move || {
                rustix::thread::move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network)).unwrap();
                f()
            })
            .join()
            .unwrap()
        };
        let connects = |host: Ipv4Addr, port: u16| -> Box<dyn FnOnce() -> bool + Send> {
            Box::new(move || TcpStream::connect_timeout(&(host, port).into(), Duration::from_millis(500)).is_ok())
        };
        // The endpoint is always reachable; other host ports only as the rules say.
        let server = std::thread::spawn(move || {
            let (mut s, peer) = open.accept().unwrap();
            s.write_all(b"hi").unwrap();
            peer.ip()
        });
        let got = inside(
            &a,
            Box::new(move || {
                let mut s = TcpStream::connect_timeout(&(gw, open_port).into(), Duration::from_secs(2)).unwrap();
                let mut buf = [0u8; 2];
                s.read_exact(&mut buf).is_ok()
            }),
        );
        assert!(got);
        // Masqueraded: the host sees the router's uplink address.
        assert_ne!(server.join().unwrap(), std::net::IpAddr::V4(link_a.address));
        assert!(!inside(&a, connects(gw, closed_port)), "a port no egress rule allows was reached");
        // B listens; A cannot reach B's VPC at all.
        let b_listener = {
            let fd = b.try_clone().unwrap();
            std::thread::spawn(move || {
                rustix::thread::move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network)).unwrap();
                TcpListener::bind((Ipv4Addr::UNSPECIFIED, 8080)).unwrap()
            })
            .join()
            .unwrap()
        };
        assert!(!inside(&a, connects(link_b.address, 8080)), "one VPC reached another");
        drop(b_listener);
        drop(closed);
        drop(linker);
        let _ = std::process::Command::new("ip").args(["link", "del", "nimbustest1"]).status();
    }
}
