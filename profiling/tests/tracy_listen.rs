//! Where the Tracy client listens: with the `tracy` feature, on the loopback interface only
//! (a developer machine does not hand its profile to the network); with `tracy-network` alone,
//! on every interface. Linux only: it reads the process's listening sockets from `/proc`.
//! Its own test binary, so that it owns the process's one Tracy client.
#![cfg(all(feature = "tracy-backend", target_os = "linux"))]

use std::collections::HashSet;
use std::time::{Duration, Instant};

static TRACY: jobsys_profiling::Tracy = jobsys_profiling::Tracy::new();

/// Socket inodes this process holds open.
fn own_socket_inodes() -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(n) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.insert(n.parse().expect("socket inode"));
            }
        }
    }
    inodes
}

/// Local addresses (as `/proc/net/tcp{,6}` writes them, hex) of this process's TCP sockets in
/// the LISTEN state.
fn own_listening_addresses() -> Vec<String> {
    let inodes = own_socket_inodes();
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (local, state, inode) = (cols[1], cols[3], cols[9]);
            if state == "0A" && inodes.contains(&inode.parse().expect("inode")) {
                found.push(local.to_owned());
            }
        }
    }
    found
}

/// Whether a `/proc/net/tcp{,6}` local address is on the loopback interface.
fn is_loopback(local: &str) -> bool {
    let ip = local.split(':').next().expect("address");
    match ip.len() {
        // IPv4 127.0.0.1, little-endian words.
        8 => ip == "0100007F",
        // IPv6 ::1, or ::ffff:127.0.0.1.
        32 => ip == "00000000000000000000000001000000" || ip == "0000000000000000FFFF00000100007F",
        _ => false,
    }
}

#[test]
fn the_client_listens_where_the_feature_says() {
    assert!(TRACY.install(), "the only install in this process");
    // The client opens its listening socket on its own thread, with no signal to wait on:
    // poll the process's sockets until it shows up (bounded, so a client that never listens
    // fails here instead of hanging).
    let start = Instant::now();
    let addresses = loop {
        let found = own_listening_addresses();
        if !found.is_empty() {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the Tracy client opened no listening socket"
        );
        std::thread::yield_now();
    };
    if cfg!(feature = "tracy") {
        assert!(
            addresses.iter().all(|a| is_loopback(a)),
            "`tracy` listens on loopback only, found {addresses:?}"
        );
    } else {
        assert!(
            addresses.iter().any(|a| !is_loopback(a)),
            "`tracy-network` listens on every interface, found {addresses:?}"
        );
    }
}
