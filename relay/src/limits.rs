//! Open sockets per client, and who a client is: its address, or for IPv6 its /64.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Who an address belongs to, for the per-client limits: an IPv4 address, or an IPv6 /64
/// (a phone or a home is given a whole /64 and may use any address in it, so counting
/// per address would let one client be thousands). An IPv4-mapped IPv6 address is its IPv4.
pub fn subscriber(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Counts open connections (signaling sockets, or TCP connections) by address.
#[derive(Debug)]
pub struct Connections {
    per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    /// The gauge of all open ones, told each change.
    gauge: fn(f64),
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct Admitted {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// At most `per_ip` connections from one address; `gauge` follows the total.
    pub fn new(per_ip: usize, gauge: fn(f64)) -> Arc<Self> {
        Arc::new(Self { per_ip, open: Mutex::default(), gauge })
    }

    /// Counts a new connection from `ip`, unless that address is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_default();
        if *count >= self.per_ip {
            return None;
        }
        *count += 1;
        (self.gauge)(1.0);
        Some(Admitted { connections: self.clone(), ip })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
        (self.connections.gauge)(-1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_ipv6_network_of_64_bits_is_one_client() {
        assert_eq!(subscriber(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(subscriber(ip("2001:db8:1:2:ffff:1:2:3")), subscriber(ip("2001:db8:1:2::9")));
        assert_ne!(subscriber(ip("2001:db8:1:2::1")), subscriber(ip("2001:db8:1:3::1")));
        assert_eq!(subscriber(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(subscriber(ip("203.0.113.7")), ip("203.0.113.7"));
    }

    #[test]
    fn sockets_from_one_ipv6_network_share_its_limit() {
        let connections = Connections::new(2, |_| {});
        let first = connections.admit(subscriber(ip("2001:db8::1")));
        let second = connections.admit(subscriber(ip("2001:db8::2")));
        assert!(first.is_some() && second.is_some());
        assert!(connections.admit(subscriber(ip("2001:db8::3"))).is_none(), "a third address of the same /64");
        assert!(connections.admit(subscriber(ip("2001:db8:0:1::1"))).is_some(), "another /64 is another client");
        drop(first);
        assert!(connections.admit(subscriber(ip("2001:db8::4"))).is_some());
    }
}
