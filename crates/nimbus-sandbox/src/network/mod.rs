//! The link between a sandbox's network namespace and the host: one bridge (`nimbus0`)
//! holding the gateway address, and one veth pair per environment whose host end is an
//! *isolated* bridge port, so an environment reaches the host (the Nimbus API at the
//! gateway address, other host services, and beyond as the host routes) but never another
//! environment. Its Runtime API listens on the namespace's own loopback, out of everyone
//! else's reach; so does the server's door (`crate::server_door`), at the server's own port,
//! so that the server's loopback address leads to the server inside too.
//!
//! ```text
//!  host netns                               environment netns
//!  nimbus0 (bridge, 10.213.0.1/16) ── nb2a ═══ eth0 10.213.0.42/16, default via 10.213.0.1
//!          (isolated port)                     lo 127.0.0.1 — Runtime API :9001
//!                                                 127.0.0.1, ::1 — the server's port (door)
//! ```
//!
//! A Linux bridge takes at most 1,024 ports, so environments are spread over bridges by
//! address: the subnet's addresses come in blocks of 1,024 (a /22), the first block's
//! environments on `nimbus0`, block `k`'s on `nimbus0b<k>`, made when its first environment
//! is linked, with a route for its block (the most specific one, over `nimbus0`'s /16) and no
//! address of its own. An environment still has the whole subnet on-link and the gateway as
//! its default route: it finds the gateway on its own bridge (the host answers ARP for any
//! of its addresses on any interface), and any other environment only by ARP on its own
//! segment, where isolated ports and the other bridges keep it from answering.
//!
//! Addresses are allocated without any state of ours: the host end of the pair is named
//! after the address (`nb<hex>`), and creating an interface whose name exists fails, so the
//! kernel is the allocator, host-wide, across several servers sharing the bridge. The pair
//! lives as long as the namespace: when the last process and socket in it are gone, the
//! kernel removes both ends; nothing is left after a crash.
//!
//! An environment of a function in a VPC is linked differently, into its VPC's router and
//! with its security groups as its packet filter: see [`vpc`].

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use rustix::io::Errno;
use rustix::thread::LinkNameSpaceType;

use crate::jail::{self, ReturnToNetns};

mod vpc;
pub use vpc::{find_nft, FilterRule, Traffic, VpcPlan};

/// The default subnet of environments' addresses; its first address is the gateway.
pub const DEFAULT_SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 213, 0, 0), 16);
/// The bridge's name.
pub const BRIDGE: &str = "nimbus0";
/// The interface name inside every environment.
const INSIDE_IF: &str = "eth0";

/// Makes network namespaces linked to the host bridge. One thread of its own, at a raised
/// priority, makes every link: each step takes the kernel's one rtnl lock, and under a burst
/// of cold starts a link made on an ordinary thread waits behind hundreds of runnable
/// processes at every step (measured: 12 ms a link instead of 1 ms, one after another).
#[derive(Debug)]
pub struct Linker {
    /// The host's address on the bridge.
    gateway: Ipv4Addr,
    /// Namespaces made ahead of time, most recent last.
    ready: Arc<Mutex<Vec<Netns>>>,
    requests: Mutex<mpsc::Sender<Request>>,
    /// The Nimbus API's port at the gateway, which environments in a VPC may always reach.
    endpoint_port: AtomicU16,
    /// Whether VPC environments can be filtered here (`nft` found).
    vpc_capable: bool,
    /// The server's port, at which every linked namespace gets a door to the server.
    server_port: Option<u16>,
    /// Where those doors lead (set once the server can serve).
    door: Arc<OnceLock<crate::ServerDoor>>,
    /// The bridges made after the first one, and who is told of them.
    more_bridges: Arc<Mutex<MoreBridges>>,
}

/// A callback told the name of each bridge made after the first (see [`Linker::on_bridge`]).
type BridgeHook = Arc<dyn Fn(&str) -> io::Result<()> + Send + Sync>;

/// The hook told of each bridge made after the first, and the bridges made before it was
/// set (both under one lock, so each bridge is told once: made before the hook is set, by
/// [`Linker::on_bridge`]; after, by the maker thread).
#[derive(Default)]
struct MoreBridges {
    untold: Vec<String>,
    hook: Option<BridgeHook>,
}

impl std::fmt::Debug for MoreBridges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoreBridges").field("untold", &self.untold).field("hook", &self.hook.is_some()).finish()
    }
}

enum Request {
    /// Make one now and send it back.
    Make(mpsc::SyncSender<io::Result<Netns>>),
    /// Link this existing namespace now.
    Link(OwnedFd, mpsc::SyncSender<io::Result<LinkInfoHost>>),
    /// Link this existing namespace into its VPC now (the endpoint's port with it).
    LinkVpc(OwnedFd, Arc<VpcPlan>, u16, mpsc::SyncSender<io::Result<LinkInfoHost>>),
    /// One was taken from the ready ones: make another when idle.
    Refill,
}

/// What the maker thread owns.
struct Maker {
    /// The first block's bridge.
    first_bridge: Bridge,
    /// `nimbus0`: the first block's bridge; block `k`'s is `<bridge>b<k>`.
    bridge: String,
    /// Addresses per bridge: 2^`block_bits` (at most 10: 1,024, what a bridge takes in ports).
    block_bits: u32,
    /// The bridges of blocks after the first, by block, made on demand.
    extra_bridges: HashMap<u32, Bridge>,
    /// The server's own network namespace, which the thread returns to after making one.
    host_netns: OwnedFd,
    network: u32,
    prefix: u8,
    /// Next host number to try (addresses are tried round-robin so a freed one is not
    /// reused at once).
    cursor: u32,
    /// `nft`, for VPC environments' packet filters (None: not installed).
    nft: Option<PathBuf>,
    /// Each VPC's router, made when its first environment is linked.
    routers: HashMap<String, vpc::Router>,
    /// The server's port, listened at in every namespace made (see `Linker::server_port`).
    server_port: Option<u16>,
    /// The host's `/proc/sys/net/ipv6/conf`, opened once (see [`HostIpv6`]).
    host_ipv6: HostIpv6,
    /// Shared with the [`Linker`] (see [`Linker::on_bridge`]).
    more_bridges: Arc<Mutex<MoreBridges>>,
}

/// A bridge environments are linked to.
#[derive(Debug, Clone, Copy)]
struct Bridge {
    index: u32,
    /// The gateway's MAC address, as the bridge's environments see it.
    mac: [u8; 6],
}

/// A linked network namespace with its Runtime API listener (and its listeners at the
/// server's port), not yet used.
#[derive(Debug)]
pub struct Netns {
    pub fd: OwnedFd,
    pub listener: TcpListener,
    pub server: Vec<TcpListener>,
    pub link: LinkInfoHost,
}

/// 2^10 = 1,024 addresses per bridge: what a Linux bridge takes in ports. (Adding or
/// removing a port walks all of the bridge's ports under the rtnl lock, so smaller blocks
/// would link faster: 960 veth pairs on one bridge took 480 µs each to add against 368 µs
/// on bridges of 128 ports. But addresses are given out round-robin over the whole subnet,
/// so a long-running server ends up with a bridge, and a listener, for every block.)
pub const BLOCK_BITS: u32 = 10;

/// The Runtime API's port inside every linked namespace.
pub const RUNTIME_API_PORT: u16 = 9001;

/// One environment's link, as the host sees it.
#[derive(Debug, Clone)]
pub struct LinkInfoHost {
    pub address: Ipv4Addr,
    pub host_interface: String,
}

impl Linker {
    /// Creates the bridge with the gateway address (or takes the one there is), brings it
    /// up, and starts the maker thread, which keeps `keep_ready` linked namespaces made
    /// ahead of time. `subnet` must be a /16 to /28 private network. With `server_port`,
    /// every namespace gets listeners at that port on its loopback, served through the door
    /// given to [`Linker::open_door`].
    pub fn setup(bridge: &str, subnet: (Ipv4Addr, u8), keep_ready: usize, server_port: Option<u16>) -> io::Result<Arc<Linker>> {
        Self::setup_with_blocks(bridge, subnet, keep_ready, server_port, BLOCK_BITS)
    }

    /// [`Linker::setup`] with 2^`block_bits` addresses per bridge (tests use small blocks to
    /// spread a few environments over several bridges).
    pub fn setup_with_blocks(
        bridge: &str,
        subnet: (Ipv4Addr, u8),
        keep_ready: usize,
        server_port: Option<u16>,
        block_bits: u32,
    ) -> io::Result<Arc<Linker>> {
        let (net, prefix) = subnet;
        if !(16..=28).contains(&prefix) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("subnet prefix /{prefix} must be /16 to /28")));
        }
        let mask = u32::MAX << (32 - prefix);
        let network = u32::from(net) & mask;
        if let Some(iface) = overlapping_route(bridge, network, mask)? {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{net}/{prefix} overlaps a route of {iface}; choose another --sandbox-subnet"),
            ));
        }
        let gateway = Ipv4Addr::from(network + 1);
        let mut nl = Netlink::open()?;
        let first_bridge = nl.make_bridge(bridge)?;
        let host_ipv6 = HostIpv6::open();
        host_ipv6.off(bridge);
        match nl.add_address(first_bridge.index, gateway, prefix) {
            Err(e) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => {}
            other => other?,
        }
        let nft = find_nft();
        let vpc_capable = nft.is_some();
        let more_bridges = Arc::new(Mutex::new(MoreBridges::default()));
        let maker = Maker {
            first_bridge,
            bridge: bridge.to_string(),
            block_bits: block_bits.clamp(2, 10),
            extra_bridges: HashMap::new(),
            host_netns: OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net")?),
            network,
            prefix,
            cursor: 2,
            nft,
            routers: HashMap::new(),
            server_port,
            host_ipv6,
            more_bridges: more_bridges.clone(),
        };
        let (tx, rx) = mpsc::channel();
        let ready = Arc::new(Mutex::new(Vec::new()));
        let pool = ready.clone();
        std::thread::Builder::new().name("nimbus-linker".into()).spawn(move || maker.run(rx, pool, keep_ready))?;
        let _ = tx.send(Request::Refill);
        Ok(Arc::new(Linker {
            gateway,
            ready,
            requests: Mutex::new(tx),
            endpoint_port: AtomicU16::new(server_port.unwrap_or(0)),
            vpc_capable,
            server_port,
            door: Arc::new(OnceLock::new()),
            more_bridges,
        }))
    }

    /// Tells `hook` the name of every bridge made after the first (`<bridge>b<k>`, one per
    /// block of addresses): those made so far at once (their errors are returned, the
    /// first one), each later one on the linker's thread before any environment is linked
    /// to it (an error there fails that link, and the next link into the block asks again).
    /// The server listens at the gateway address on each: its listener is bound to a
    /// bridge, and an environment's connection arrives on its own bridge. Set once; a later
    /// call replaces the hook for the bridges made after it.
    pub fn on_bridge(&self, hook: impl Fn(&str) -> io::Result<()> + Send + Sync + 'static) -> io::Result<()> {
        let hook: BridgeHook = Arc::new(hook);
        let made = {
            let mut more = self.more_bridges.lock().unwrap_or_else(|p| p.into_inner());
            more.hook = Some(hook.clone());
            std::mem::take(&mut more.untold)
        };
        let mut first_error = None;
        for name in made {
            if let Err(e) = hook(&name) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The port at which linked namespaces take in connections for the server.
    pub fn server_port(&self) -> Option<u16> {
        self.server_port
    }

    /// Where connections to the server's port inside environments go from now on (until
    /// then they are closed). Set once; later calls change nothing.
    pub fn open_door(&self, door: crate::ServerDoor) {
        let _ = self.door.set(door);
    }

    /// The server's port and the door there (closed until [`Linker::open_door`]; an
    /// environment started before then gets it open once it is).
    pub(crate) fn door(&self) -> Option<(u16, crate::ServerDoor)> {
        let cell = self.door.clone();
        let door = crate::ServerDoor::new(move |stream, peer| {
            if let Some(door) = cell.get() {
                door.enter(stream, peer);
            }
        });
        self.server_port.map(|port| (port, door))
    }

    /// The port of the Nimbus API at the gateway address: environments in a VPC may always
    /// reach it, whatever their security groups say.
    pub fn set_endpoint_port(&self, port: u16) {
        self.endpoint_port.store(port, Ordering::Relaxed);
    }

    /// Whether environments in a VPC can get their packet filters here (`nft` is installed).
    pub fn vpc_capable(&self) -> bool {
        self.vpc_capable
    }

    /// Links an existing namespace into its VPC (see [`vpc`]). Blocking until the maker
    /// thread has done it; call it off the async threads.
    pub fn link_vpc(&self, ns: &OwnedFd, plan: Arc<VpcPlan>) -> io::Result<LinkInfoHost> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Request::LinkVpc(ns.try_clone()?, plan, self.endpoint_port.load(Ordering::Relaxed), tx))?;
        rx.recv().map_err(|_| io::Error::other("the linker thread is gone"))?
    }

    /// The host's address on the bridge: environments reach the Nimbus API here.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn send(&self, r: Request) -> io::Result<()> {
        let tx = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        tx.send(r).map_err(|_| io::Error::other("the linker thread is gone"))
    }

    /// A namespace made and linked ahead of time, if one is ready (the maker then makes
    /// another). Never blocks.
    pub fn take_ready(&self) -> Option<Netns> {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        let _ = self.send(Request::Refill);
        Some(ready)
    }

    /// Links an existing namespace (one made with [`jail::new_netns_with_listener`]) to the
    /// bridge. Blocking until the maker thread has done it; call it off the async threads.
    pub fn link(&self, ns: &OwnedFd) -> io::Result<LinkInfoHost> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Request::Link(ns.try_clone()?, tx))?;
        rx.recv().map_err(|_| io::Error::other("the linker thread is gone"))?
    }

    /// A linked namespace: one made ahead of time if there is one (the maker then makes
    /// another), else a new one from the maker. Blocking; call it off the async threads.
    pub fn take(&self) -> io::Result<Netns> {
        let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(ns) = ready {
            let _ = self.send(Request::Refill);
            return Ok(ns);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Request::Make(tx))?;
        rx.recv().map_err(|_| io::Error::other("the linker thread is gone"))?
    }
}

/// How long the linker waits before it tries again to make a ready namespace after
/// `failures` failures in a row: 10 ms, doubling, at most a second.
fn refill_pause(failures: u32) -> std::time::Duration {
    std::time::Duration::from_millis(10u64 << failures.saturating_sub(1).min(7)).min(std::time::Duration::from_secs(1))
}

impl Maker {
    /// Serves requests first; when there are none, tops the ready namespaces up. Ends when
    /// the [`Linker`] is dropped.
    fn run(mut self, rx: mpsc::Receiver<Request>, ready: Arc<Mutex<Vec<Netns>>>, keep_ready: usize) {
        // A higher priority than the runtimes and sandbox-inits it makes links for (root
        // may raise it; elsewhere this fails and changes nothing).
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), -10);
        let mut next = rx.recv();
        // Failures in a row to make a ready namespace (out of descriptors or memory in a
        // burst): each waits longer before the next try (requests are served meanwhile), and
        // only the first is logged.
        let mut failures: u32 = 0;
        let mut retry_at: Option<std::time::Instant> = None;
        loop {
            match next {
                Ok(Request::Make(reply)) => {
                    let _ = reply.send(self.timed(RUNTIME_API_PORT));
                }
                Ok(Request::Link(ns, reply)) => {
                    let began = std::time::Instant::now();
                    let linked = self.link(&ns);
                    tracing::debug!(took_us = began.elapsed().as_micros() as u64, "linked network namespace");
                    let _ = reply.send(linked);
                }
                Ok(Request::LinkVpc(ns, plan, port, reply)) => {
                    let began = std::time::Instant::now();
                    let linked = self.link_vpc(&ns, &plan, port);
                    tracing::debug!(took_us = began.elapsed().as_micros() as u64, vpc = %plan.vpc_id, "linked a VPC environment");
                    let _ = reply.send(linked);
                }
                Ok(Request::Refill) => {}
                Err(_) => return,
            }
            next = match rx.try_recv() {
                Ok(r) => Ok(r),
                Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {
                    let wait = retry_at.map(|at| at.saturating_duration_since(std::time::Instant::now())).filter(|d| !d.is_zero());
                    if let Some(wait) = wait {
                        match rx.recv_timeout(wait) {
                            Err(mpsc::RecvTimeoutError::Timeout) => Ok(Request::Refill),
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                            Ok(r) => Ok(r),
                        }
                    } else if ready.lock().unwrap_or_else(|p| p.into_inner()).len() < keep_ready {
                        retry_at = None;
                        match self.timed(RUNTIME_API_PORT) {
                            Ok(ns) => {
                                ready.lock().unwrap_or_else(|p| p.into_inner()).push(ns);
                                if failures > 0 {
                                    tracing::info!(failures, "made a network namespace ahead of time again");
                                }
                                failures = 0;
                                Ok(Request::Refill)
                            }
                            Err(e) => {
                                if failures == 0 {
                                    tracing::warn!("cannot make a network namespace ahead of time (trying again later): {e}");
                                }
                                failures = failures.saturating_add(1);
                                // The next try comes after the pause, not at once (each
                                // costs a namespace made and torn down).
                                retry_at = Some(std::time::Instant::now() + refill_pause(failures));
                                Ok(Request::Refill)
                            }
                        }
                    } else {
                        rx.recv()
                    }
                }
            };
        }
    }

    fn timed(&mut self, port: u16) -> io::Result<Netns> {
        let began = std::time::Instant::now();
        let made = self.make(port);
        tracing::debug!(took_us = began.elapsed().as_micros() as u64, "linked network namespace");
        made
    }

    fn hosts(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }

    /// Whether host number `n` may be given out: its bridge has ports left for every
    /// address of its block (a bridge takes 1,024 ports; the last four of each block stay
    /// unused, which a block of 1,024 needs and smaller ones keep for simplicity).
    fn usable(&self, n: u32) -> bool {
        let block = 1u32 << self.block_bits;
        let reserved = (block / 4).min(4);
        n % block < block - reserved
    }

    /// The bridge that host number `n`'s environment is linked to: `nimbus0` for the first
    /// block, else its block's, made (with its route) the first time.
    fn bridge_of(&mut self, nl: &mut Netlink, n: u32) -> io::Result<Bridge> {
        let k = n >> self.block_bits;
        if k == 0 || u32::from(self.prefix) >= 32 - self.block_bits {
            return Ok(self.first_bridge);
        }
        if let Some(bridge) = self.extra_bridges.get(&k) {
            return Ok(*bridge);
        }
        let name = format!("{}b{k}", self.bridge);
        let bridge = nl.make_bridge(&name)?;
        self.host_ipv6.off(&name);
        let dst = Ipv4Addr::from(self.network + (k << self.block_bits));
        match nl.add_link_route(bridge.index, dst, (32 - self.block_bits) as u8, self.gateway()) {
            Err(e) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => {}
            other => other?,
        }
        // Told before it is used (and not kept until told: the next link asks again), or
        // kept for the hook to come.
        let hook = {
            let mut more = self.more_bridges.lock().unwrap_or_else(|p| p.into_inner());
            if more.hook.is_none() {
                more.untold.push(name.clone());
            }
            more.hook.clone()
        };
        if let Some(hook) = hook {
            hook(&name)?;
        }
        tracing::debug!(bridge = %name, block = %dst, "made a bridge for another block of environments");
        self.extra_bridges.insert(k, bridge);
        Ok(bridge)
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    /// A new network namespace with `lo` up, a Runtime API listener on its loopback at
    /// `port` (and the server's port's), and `eth0` linked to the bridge.
    fn make(&mut self, port: u16) -> io::Result<Netns> {
        // This thread makes the namespace and returns to the host's before it goes on.
        let (ns, listener, server) = {
            let _back = ReturnToNetns(&self.host_netns);
            let (ns, listener) = jail::enter_new_netns_with_listener(port).map_err(io::Error::other)?;
            let server = match self.server_port {
                Some(p) => jail::server_listeners(p, p != port).map_err(io::Error::other)?,
                None => Vec::new(),
            };
            (ns, listener, server)
        };
        let link = self.link(&ns)?;
        Ok(Netns { fd: ns, listener, server, link })
    }

    /// Links the namespace open at `ns` to the bridge: a veth pair, its host end an isolated
    /// port, `eth0` inside with an address and the default route.
    fn link(&mut self, ns: &OwnedFd) -> io::Result<LinkInfoHost> {
        // Opened in the host namespace, then one opened inside (a netlink socket speaks to
        // the namespace it was made in, from any thread).
        let mut host = Netlink::open()?;
        let mut inside = {
            let _back = ReturnToNetns(&self.host_netns);
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
            Netlink::open()?
        };

        // Try host numbers until a name is free.
        let hosts = self.hosts();
        let mut last_err = None;
        let mut tried = 0;
        for _ in 0..hosts {
            let n = self.cursor % hosts + 1;
            self.cursor = self.cursor.wrapping_add(1);
            if n == 1 || !self.usable(n) {
                continue; // the gateway, or past what its bridge takes
            }
            tried += 1;
            if tried > 4096 {
                break;
            }
            let address = Ipv4Addr::from(self.network + n);
            let host_interface = format!("nb{n:x}");
            let bridge = self.bridge_of(&mut host, n)?;
            let mac = environment_mac(address);
            match host.add_veth(&host_interface, bridge.index, ns, Some(mac)) {
                Ok(()) => {
                    self.host_ipv6.off(&host_interface);
                    host.isolate_port(&host_interface)?;
                    // No IPv6 address on eth0 (see `no_ipv6`), asked for by netlink rather
                    // than by writing `default/disable_ipv6` in the namespace before eth0
                    // arrives: every namespace has a `net` entry of its own under the one
                    // `/proc/sys`, so that path's lookup compared against one entry per live
                    // namespace (0.7 ms of the linker's time per link at 1,000 environments).
                    // IPv6 stays on there without an address: no link-local one, so no
                    // duplicate address detection and no router solicitations. An address could
                    // still come from a router advertisement on the segment, but nothing on it
                    // speaks IPv6: the host's end of the pair and the bridge have IPv6 off, the
                    // other ports are isolated environments without the capability to send raw
                    // frames. A kernel without IPv6 answers EAFNOSUPPORT: nothing to turn off.
                    match inside.no_ipv6_addresses(INSIDE_IF) {
                        Err(e) if e.raw_os_error() == Some(Errno::AFNOSUPPORT.raw_os_error()) => {}
                        other => other?,
                    }
                    inside.set_up(INSIDE_IF)?;
                    let index = link_index(&mut inside, INSIDE_IF)?;
                    inside.add_address(index, address, self.prefix)?;
                    inside.add_default_route(index, self.gateway())?;
                    // Each side knows the other's MAC address from the start (see
                    // `environment_mac`).
                    inside.add_known_neighbour(index, self.gateway(), bridge.mac)?;
                    host.add_known_neighbour(bridge.index, address, mac)?;
                    return Ok(LinkInfoHost { address, host_interface });
                }
                Err(e) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free address")))
    }
}

/// An environment's MAC address, fixed by its IPv4 address (locally administered, unicast):
/// `02:6e:` and the address's four bytes. When the link is made, the host and the
/// environment are told each other's MAC addresses as neighbour entries marked externally
/// learned (`extern_learn`), so neither side has to ask by ARP first. Such entries are left
/// out of the kernel's neighbour-table limit (`net.ipv4.neigh.default.gc_thresh3`, 1,024 by
/// default, shared by every network namespace), which learned entries reach at about 500
/// environments calling the host (each counts twice: the host's and the environment's). They
/// are still kept true by ARP (reachable, then stale and probed like any other), so a bridge
/// whose MAC address changed, or an address taken by an environment of another server on
/// the same bridge, is learned again; a host entry outlives its environment (the bridge keeps
/// it, never aged out) and is the next environment's of that address.
fn environment_mac(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x6e, a, b, c, d]
}

/// A bridge's kind and options, as every bridge Nimbus makes has them: no multicast
/// snooping. Its ports are isolated (no port forwards to another, snooping or not), and with
/// snooping on, each port that comes up walks every port of its bridge to restart their
/// multicast query timers (`br_port_state_selection` → `br_multicast_enable_port`): on a
/// bridge of a thousand environments, 0.1–0.25 ms of each link made.
fn bridge_kind() -> LinkAttribute {
    LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::MulticastSnooping(false)])),
    ])
}

/// A random, locally administered unicast MAC address, set on a bridge when it is made:
/// an address given explicitly stays (see [`Netlink::pin_address`]).
fn fixed_bridge_mac() -> [u8; 6] {
    let random = uuid::Uuid::new_v4();
    let b = random.as_bytes();
    [(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// The interface of a host route (other than the default route and the bridge's own route
/// for exactly this subnet) that overlaps `network/mask`: taking such a subnet would hijack
/// the host's traffic to it, or clash with another server's subnet on the same bridge.
fn overlapping_route(bridge: &str, network: u32, mask: u32) -> io::Result<Option<String>> {
    let table = match std::fs::read_to_string("/proc/net/route") {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(routes_overlapping(&table, bridge, network, mask))
}

/// [`overlapping_route`] on the text of `/proc/net/route` (addresses in little-endian hex).
fn routes_overlapping(table: &str, bridge: &str, network: u32, mask: u32) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (iface, dest, route_mask) = (f.first()?, f.get(1)?, f.get(7)?);
        let dest = u32::from_be(u32::from_str_radix(dest, 16).ok()?);
        let route_mask = u32::from_be(u32::from_str_radix(route_mask, 16).ok()?);
        // Two prefixes overlap when they agree on the shorter one's bits.
        let common = mask & route_mask;
        let overlaps = route_mask != 0 && (dest & common) == (network & common);
        let block_bridge = iface.strip_prefix(bridge).and_then(|r| r.strip_prefix('b')).is_some_and(|k| k.parse::<u32>().is_ok());
        let ours = (*iface == bridge && dest == network && route_mask == mask) || block_bridge;
        (overlaps && !ours).then(|| iface.to_string())
    })
}

/// Turns IPv6 off on an interface (`default`: on interfaces created later in the calling
/// thread's namespace). Environments are linked over IPv4; IPv6 would give every interface
/// a link-local address with duplicate address detection, multicast joins and router
/// solicitations, work that made a burst of new environments several times slower. Without
/// IPv6 in the kernel there is nothing to turn off.
fn no_ipv6(interface: &str) {
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{interface}/disable_ipv6"), "1");
}

/// [`no_ipv6`] for the host's interfaces, relative to the host's `/proc/sys/net/ipv6/conf`
/// opened once. Every network namespace has its own `net`, `ipv6` and `conf` entries under
/// the one `/proc/sys`, all with the same names and parent, so a lookup by the full path
/// compares against one entry per live namespace at each of those steps (each comparison
/// under the kernel's sysctl lock): with 1,000 environments about 0.2 ms of the linker's
/// time per link. From the open directory only the interface's own name is looked up.
struct HostIpv6(Option<OwnedFd>);

impl HostIpv6 {
    /// Opened in the calling thread's namespace, the host's. None without IPv6.
    fn open() -> Self {
        use rustix::fs::{open, Mode, OFlags};
        HostIpv6(open("/proc/sys/net/ipv6/conf", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok())
    }

    /// Turns IPv6 off on the host's `interface`; the calling thread must be in the host's
    /// namespace (the directory's entries answer for the namespace looking them up). Without
    /// the directory (IPv6 absent at start, or it could not be opened), by the full path.
    fn off(&self, interface: &str) {
        use rustix::fs::{openat, Mode, OFlags};
        let Some(dir) = &self.0 else { return no_ipv6(interface) };
        if let Ok(file) = openat(dir, format!("{interface}/disable_ipv6"), OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()) {
            let _ = rustix::io::write(&file, b"1");
        }
    }
}

/// What the namespace `nl` speaks to knows of the interface `name`.
fn get_link(nl: &mut Netlink, name: &str) -> io::Result<LinkMessage> {
    let mut get = LinkMessage::default();
    get.attributes = vec![LinkAttribute::IfName(name.into())];
    match nl.exchange(RouteNetlinkMessage::GetLink(get), 0)? {
        Some(RouteNetlinkMessage::NewLink(m)) => Ok(m),
        _ => Err(io::Error::other(format!("no link message for {name}"))),
    }
}

/// The index of the interface `name` inside the namespace the socket belongs to (the
/// calling thread is in the host's, so `if_nametoindex` would look in the wrong place).
fn link_index(nl: &mut Netlink, name: &str) -> io::Result<u32> {
    Ok(get_link(nl, name)?.header.index)
}

/// A route netlink socket bound to the namespace it was opened in.
struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, seq: 0, buf: vec![0; 8192] })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.exchange(msg, flags | NLM_F_ACK).map(|_| ())
    }

    /// Sends one request; returns the first message answered (for a GET), or None for a
    /// plain acknowledgement. A negative acknowledgement is the errno it carries.
    fn exchange(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Option<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let len = packet.buffer_len();
        let mut out = vec![0u8; len];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| io::Error::other(format!("bad netlink reply: {e}")))?;
                let size = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    match reply.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(None),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            }
                        }
                        NetlinkPayload::InnerMessage(m) => return Ok(Some(m)),
                        _ => {}
                    }
                }
                if size == 0 {
                    break;
                }
                offset += size;
            }
        }
    }

    /// Gives a bridge a MAC address of its own unless one was set already. A bridge whose
    /// address was never set takes the lowest of its ports' addresses, so it changes as
    /// environments come and go; every change flushes the host's neighbour entries for it,
    /// and every environment that cached the old address loses its gateway until its own
    /// entry expires (tens of seconds of silence). Its present address may be a port's (it
    /// was taken from one), so it gets a new one, not that one pinned.
    fn pin_address(&mut self, name: &str) -> io::Result<()> {
        let sys = std::path::Path::new("/sys/class/net").join(name);
        // 3: NET_ADDR_SET.
        if std::fs::read_to_string(sys.join("addr_assign_type"))?.trim() == "3" {
            return Ok(());
        }
        let mut m = LinkMessage::default();
        m.attributes = vec![LinkAttribute::IfName(name.into()), LinkAttribute::Address(fixed_bridge_mac().to_vec())];
        self.request(RouteNetlinkMessage::NewLink(m), 0)
    }

    /// `ip link set <name> addrgenmode none`: on an interface that is down, so it never
    /// gets a link-local address of its own (an address from a router advertisement it
    /// would still take: see where it is called).
    fn no_ipv6_addresses(&mut self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.attributes = vec![
            LinkAttribute::IfName(name.into()),
            LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)])]),
        ];
        self.request(RouteNetlinkMessage::NewLink(m), 0)
    }

    fn set_up(&mut self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes = vec![LinkAttribute::IfName(name.into())];
        self.request(RouteNetlinkMessage::NewLink(m), 0)
    }

    /// `ip link add <host_if> master <bridge> up type veth peer name eth0 netns <ns>
    /// [address <inside_mac>]`
    fn add_veth(&mut self, host_if: &str, bridge_index: u32, ns: &OwnedFd, inside_mac: Option<[u8; 6]>) -> io::Result<()> {
        let mut peer = LinkMessage::default();
        // One queue each way, asked for at creation: a veth made without a count gets one
        // queue per possible CPU and is then cut down to one, and cutting queues of a
        // registered device waits for an RCU grace period under the rtnl lock, twice per
        // pair (`veth_init_queues`). Under a burst the expedited grace period's kernel
        // thread waits for a CPU like everything else, and every namespace being made or
        // brought up waited behind that lock.
        peer.attributes = vec![
            LinkAttribute::IfName(INSIDE_IF.into()),
            LinkAttribute::NetNsFd(ns.as_raw_fd()),
            LinkAttribute::NumTxQueues(1),
            LinkAttribute::NumRxQueues(1),
        ];
        peer.attributes.extend(inside_mac.map(|mac| LinkAttribute::Address(mac.to_vec())));
        // Created down: `isolate_port` brings it up once IPv6 is off on it.
        let mut m = LinkMessage::default();
        m.attributes = vec![
            LinkAttribute::IfName(host_if.into()),
            LinkAttribute::NumTxQueues(1),
            LinkAttribute::NumRxQueues(1),
            LinkAttribute::Controller(bridge_index),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer)))]),
        ];
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// `ip link set <host_if> up type bridge_slave isolated on`: isolated ports forward only
    /// to the bridge itself (the host), never to each other. The caller turns IPv6 off on
    /// it first (see [`HostIpv6`]).
    fn isolate_port(&mut self, host_if: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes = vec![
            LinkAttribute::IfName(host_if.into()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::PortKind(InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(true)])),
            ]),
        ];
        self.request(RouteNetlinkMessage::NewLink(m), 0)
    }

    fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = index;
        let broadcast = Ipv4Addr::from(u32::from(address) | (u32::MAX >> prefix));
        m.attributes = vec![
            AddressAttribute::Local(address.into()),
            AddressAttribute::Address(address.into()),
            AddressAttribute::Broadcast(broadcast),
        ];
        self.request(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// `ip neigh replace <address> lladdr <mac> dev <index> nud reachable extern_learn`
    fn add_known_neighbour(&mut self, index: u32, address: Ipv4Addr, mac: [u8; 6]) -> io::Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = index;
        m.header.state = NeighbourState::Reachable;
        m.header.flags = NeighbourFlags::ExtLearned;
        m.attributes =
            vec![NeighbourAttribute::Destination(NeighbourAddress::Inet(address)), NeighbourAttribute::LinkLayerAddress(mac.to_vec())];
        self.request(RouteNetlinkMessage::NewNeighbour(m), NLM_F_CREATE | NLM_F_REPLACE)
    }

    /// Creates (or takes) a bridge with a fixed MAC address of its own, up.
    fn make_bridge(&mut self, name: &str) -> io::Result<Bridge> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes = vec![LinkAttribute::IfName(name.to_string()), LinkAttribute::Address(fixed_bridge_mac().to_vec()), bridge_kind()];
        match self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
            // A bridge an earlier server made: given an address of its own, if it has none,
            // and this server's options.
            Err(e) if e.raw_os_error() == Some(Errno::EXIST.raw_os_error()) => {
                self.pin_address(name)?;
                let mut m = LinkMessage::default();
                m.attributes = vec![LinkAttribute::IfName(name.to_string()), bridge_kind()];
                self.request(RouteNetlinkMessage::NewLink(m), 0)?;
            }
            other => other?,
        }
        self.set_up(name)?;
        let link = get_link(self, name)?;
        let mac = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
            _ => None,
        });
        Ok(Bridge { index: link.header.index, mac: mac.ok_or_else(|| io::Error::other(format!("{name} has no MAC address")))? })
    }

    /// `ip route add <dst>/<len> dev <index> scope link src <src>`
    fn add_link_route(&mut self, index: u32, dst: Ipv4Addr, len: u8, src: Ipv4Addr) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = len;
        m.header.table = netlink_packet_route::route::RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Link;
        m.header.kind = RouteType::Unicast;
        m.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet(dst)),
            RouteAttribute::PrefSource(RouteAddress::Inet(src)),
            RouteAttribute::Oif(index),
        ];
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = netlink_packet_route::route::RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway)), RouteAttribute::Oif(index)];
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    #[test]
    fn refill_pauses_grow_from_10_ms_to_a_second() {
        for (failures, ms) in [(1, 10), (2, 20), (3, 40), (5, 160), (7, 640), (8, 1000), (9, 1000), (u32::MAX, 1000)] {
            assert_eq!(refill_pause(failures), Duration::from_millis(ms), "after {failures} failures");
        }
    }

    /// Runs `f` on a thread that has joined the namespace `ns`.
    fn inside<T: Send + 'static>(ns: &OwnedFd, f: impl FnOnce() -> T + Send + 'static) -> T {
        let fd = ns.try_clone().unwrap();
        std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns");
            f()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn environments_macs_follow_their_addresses() {
        // Unicast, locally administered, one per address.
        let mac = environment_mac(Ipv4Addr::new(10, 213, 4, 42));
        assert_eq!(mac, [0x02, 0x6e, 10, 213, 4, 42]);
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
        assert_ne!(environment_mac(Ipv4Addr::new(10, 213, 4, 43)), mac);
    }

    #[test]
    fn a_subnet_overlapping_a_host_route_is_refused() {
        let table = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     nimbus0\t0000D50A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                     eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     nimbus0b1\t0004D50A\t00000000\t0001\t0\t0\t0\t00FCFFFF\t0\t0\t0\n";
        let net = |a: [u8; 4]| u32::from(Ipv4Addr::from(a));
        let mask = |p: u32| u32::MAX << (32 - p);
        // Our own bridge's route and the default route do not count.
        assert_eq!(routes_overlapping(table, "nimbus0", net([10, 213, 0, 0]), mask(16)), None);
        assert_eq!(routes_overlapping(table, "nimbus0", net([192, 0, 2, 128]), mask(25)), Some("eth0".into()));
        assert_eq!(routes_overlapping(table, "nimbus0", net([192, 0, 0, 0]), mask(16)), Some("eth0".into()));
        assert_eq!(routes_overlapping(table, "other0", net([10, 213, 5, 0]), mask(24)), Some("nimbus0".into()));
        // A block's bridge (nimbus0b1, 10.213.4.0/22) is ours; for another server it clashes.
        assert_eq!(routes_overlapping(table, "nimbus0", net([10, 213, 0, 0]), mask(16)), None);
        assert_eq!(routes_overlapping(table, "other0", net([10, 213, 4, 0]), mask(24)), Some("nimbus0".into()));
        // Another server's different subnet on the same bridge clashes too.
        assert_eq!(routes_overlapping(table, "nimbus0", net([10, 213, 1, 0]), mask(24)), Some("nimbus0".into()));
    }

    #[test]
    fn environments_reach_the_gateway_but_not_each_other() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // A bridge an earlier server left, with the kernel's defaults: taken, with ours.
        let _ = std::process::Command::new("ip").args(["link", "add", "nimbustest0", "type", "bridge", "mcast_snooping", "1"]).status();
        let linker = Linker::setup("nimbustest0", (Ipv4Addr::new(10, 214, 7, 0), 24), 0, None).unwrap();
        assert_eq!(std::fs::read_to_string("/sys/class/net/nimbustest0/bridge/multicast_snooping").unwrap().trim(), "0");
        assert_eq!(linker.gateway(), Ipv4Addr::new(10, 214, 7, 1));
        let host = TcpListener::bind((linker.gateway(), 0)).unwrap();
        let host_port = host.local_addr().unwrap().port();
        let Netns { fd: a, listener: _api_a, link: link_a, .. } = linker.take().unwrap();
        let Netns { fd: b, listener: _api_b, link: link_b, .. } = linker.take().unwrap();
        assert_ne!(link_a.address, link_b.address);

        // A reaches the host at the gateway address, seen from its own address.
        let gw = linker.gateway();
        let client = std::thread::spawn(move || {
            let _ = host.set_nonblocking(false);
            let (mut s, peer) = host.accept().unwrap();
            s.write_all(b"hi").unwrap();
            peer.ip()
        });
        let got = inside(&a, move || {
            let mut s = TcpStream::connect_timeout(&(gw, host_port).into(), Duration::from_secs(2)).unwrap();
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf).unwrap();
            buf
        });
        assert_eq!(&got, b"hi");
        assert_eq!(client.join().unwrap(), std::net::IpAddr::V4(link_a.address));

        // Neither side had to ask by ARP: both were told, as externally learned entries
        // (outside the kernel's neighbour-table limit).
        let neighbours = |args: Vec<String>| {
            let out = std::process::Command::new("ip").args(&args).output().expect("ip");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let mac_a = "02:6e:0a:d6:07:".to_string() + &format!("{:02x}", link_a.address.octets()[3]);
        let host_view = neighbours(vec!["neigh".into(), "show".into(), link_a.address.to_string(), "dev".into(), "nimbustest0".into()]);
        assert!(host_view.contains(&format!("lladdr {mac_a} extern_learn")), "host: {host_view}");
        let bridge_mac = std::fs::read_to_string("/sys/class/net/nimbustest0/address").unwrap().trim().to_string();
        let inside_view = inside(&a, || {
            let out = std::process::Command::new("ip").args(["neigh", "show", "dev", "eth0"]).output().expect("ip");
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        assert!(inside_view.contains(&format!("{gw} lladdr {bridge_mac} extern_learn")), "inside: {inside_view}");
        assert_eq!(inside_view.lines().count(), 1, "inside: {inside_view}");

        // IPv6 is off on the host's end of the link, and eth0 has no IPv6 address, not even a
        // link-local one (see `no_ipv6`, `no_ipv6_addresses`).
        if std::path::Path::new("/proc/sys/net/ipv6").exists() {
            for host_side in [link_a.host_interface.as_str(), "nimbustest0"] {
                let off = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{host_side}/disable_ipv6")).unwrap();
                assert_eq!(off.trim(), "1", "{host_side}");
            }
            let eth0 = inside(&a, || {
                let out = std::process::Command::new("ip").args(["-d", "addr", "show", "dev", "eth0"]).output().expect("ip");
                String::from_utf8_lossy(&out.stdout).into_owned()
            });
            assert!(eth0.contains("inet ") && !eth0.contains("inet6"), "{eth0}");
            let mode = inside(&a, || std::fs::read_to_string("/proc/sys/net/ipv6/conf/eth0/addr_gen_mode")).unwrap();
            assert_eq!(mode.trim(), "1", "IN6_ADDR_GEN_MODE_NONE");
        }

        // One queue each way on both ends, asked for at creation (see `add_veth`).
        let details = |args: Vec<String>| {
            let out = std::process::Command::new("ip").args(&args).output().expect("ip");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let host_end = details(vec!["-d".into(), "link".into(), "show".into(), link_a.host_interface.clone()]);
        let eth0 = inside(&a, move || details(vec!["-d".into(), "link".into(), "show".into(), "eth0".into()]));
        for shown in [&host_end, &eth0] {
            assert!(shown.contains("numtxqueues 1 numrxqueues 1"), "{shown}");
        }

        // B listens on all its addresses; A cannot reach it (isolated bridge ports).
        let b_listener = inside(&b, || TcpListener::bind((Ipv4Addr::UNSPECIFIED, 8080)).unwrap());
        let b_addr = link_b.address;
        let reached = inside(&a, move || TcpStream::connect_timeout(&(b_addr, 8080).into(), Duration::from_millis(300)).is_ok());
        assert!(!reached, "one environment reached another");
        drop(b_listener);
        let _ = std::process::Command::new("ip").args(["link", "del", "nimbustest0"]).status();
    }

    #[test]
    fn environments_spread_over_bridges_by_block_reach_the_gateway_but_not_each_other() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // Blocks of 8 addresses (6 given out): 14 environments need three bridges.
        let linker = Linker::setup_with_blocks("nimbustest3", (Ipv4Addr::new(10, 214, 13, 0), 24), 0, None, 3).unwrap();
        let gw = linker.gateway();
        // As the server does: a listener at the gateway bound to each bridge, the later
        // bridges' as they are reported.
        fn listen_on(rt: &tokio::runtime::Runtime, bridge: &str, at: std::net::SocketAddr) -> io::Result<TcpListener> {
            let _in_runtime = rt.enter();
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind_device(Some(bridge.as_bytes()))?;
            socket.bind(at)?;
            socket.listen(64)?.into_std()
        }
        let rt = Arc::new(tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap());
        let first = listen_on(&rt, "nimbustest3", (gw, 0).into()).unwrap();
        let port = first.local_addr().unwrap().port();
        let listeners = Arc::new(Mutex::new(vec![first]));
        let told = Arc::new(Mutex::new(Vec::new()));
        let (hook_told, hook_listeners) = (told.clone(), listeners.clone());
        linker
            .on_bridge(move |b| {
                hook_told.lock().unwrap().push(b.to_string());
                hook_listeners.lock().unwrap().push(listen_on(&rt, b, (gw, port).into())?);
                Ok(())
            })
            .unwrap();
        let envs: Vec<Netns> = (0..14).map(|_| linker.take().unwrap()).collect();
        let master = |iface: &str| {
            std::fs::read_link(format!("/sys/class/net/{iface}/master"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        };
        let bridges: std::collections::BTreeSet<String> = envs.iter().filter_map(|e| master(&e.link.host_interface)).collect();
        assert!(bridges.len() >= 3, "bridges: {bridges:?}");
        // Each bridge after the first was reported once (the server listens on each).
        let mut told = told.lock().unwrap().clone();
        told.sort();
        let later: Vec<String> = bridges.iter().filter(|b| *b != "nimbustest3").cloned().collect();
        assert_eq!(told, later);
        // No multicast snooping on any of them (see `bridge_kind`).
        for b in &bridges {
            let snooping = std::fs::read_to_string(format!("/sys/class/net/{b}/bridge/multicast_snooping")).unwrap();
            assert_eq!(snooping.trim(), "0", "{b}");
        }
        // Nothing on a segment speaks IPv6 (see `link`): each block's bridge has it off.
        if std::path::Path::new("/proc/sys/net/ipv6").exists() {
            for b in &bridges {
                let off = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{b}/disable_ipv6")).unwrap();
                assert_eq!(off.trim(), "1", "{b}");
            }
        }
        for e in &envs {
            let octet = e.link.address.octets()[3];
            assert!(octet % 8 < 6, "{} is past what its block's bridge takes", e.link.address);
            let want = if octet < 8 { "nimbustest3".to_string() } else { format!("nimbustest3b{}", octet / 8) };
            assert_eq!(master(&e.link.host_interface), Some(want.clone()));
            // The host's entry for it is on its own bridge.
            let out =
                std::process::Command::new("ip").args(["neigh", "show", &e.link.address.to_string(), "dev", &want]).output().expect("ip");
            let [a, b, c, d] = e.link.address.octets();
            let mac = format!("02:6e:{a:02x}:{b:02x}:{c:02x}:{d:02x}");
            assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("lladdr {mac} extern_learn")), "{}", e.link.address);
        }

        // Every environment reaches the host at the gateway address, whatever its bridge:
        // through the listener bound to its own bridge.
        for e in &envs {
            let ok = inside(&e.fd, move || TcpStream::connect_timeout(&(gw, port).into(), Duration::from_secs(2)).is_ok());
            assert!(ok, "{} cannot reach the gateway", e.link.address);
        }
        let mut peers = std::collections::BTreeSet::new();
        for l in listeners.lock().unwrap().iter() {
            l.set_nonblocking(true).unwrap();
            while let Ok((_, peer)) = l.accept() {
                peers.insert(peer.ip());
            }
        }
        assert_eq!(peers.len(), 14, "each seen from its own address");

        // One environment on the last bridge cannot reach one on the first, nor the reverse.
        let (first, last) = (&envs[0], &envs[13]);
        assert_ne!(master(&first.link.host_interface), master(&last.link.host_interface));
        for (from, to) in [(first, last), (last, first)] {
            let listener = inside(&to.fd, || TcpListener::bind((Ipv4Addr::UNSPECIFIED, 8080)).unwrap());
            let addr = to.link.address;
            let reached = inside(&from.fd, move || TcpStream::connect_timeout(&(addr, 8080).into(), Duration::from_millis(300)).is_ok());
            assert!(!reached, "an environment reached one on another bridge");
            drop(listener);
        }
        drop(envs);
        for b in bridges {
            let _ = std::process::Command::new("ip").args(["link", "del", &b]).status();
        }
    }
}
