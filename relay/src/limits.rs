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

/// A limit per client that holds only while the relay is busy. A mobile carrier puts
/// thousands of phones behind one IPv4 address (carrier-grade NAT): a fixed per-address
/// limit would turn away real people of a popular deployment, each behind their carrier.
/// So while fewer than `busy_above` are open in all, one address may hold any number; once
/// that many are open, no address gets another beyond `limit`. An abuser alone can then
/// hold at most `busy_above` (sized well within the relay's means), and everyone else still
/// gets in up to `limit` each.
#[derive(Clone, Copy, Debug)]
pub struct PerClient {
    pub limit: usize,
    pub busy_above: usize,
}

impl PerClient {
    /// Whether a client holding `mine` may have one more, with `total` open in all.
    pub fn allows(self, total: usize, mine: usize) -> bool {
        total < self.busy_above || mine < self.limit
    }
}

/// Counts open connections (signaling sockets, or TCP connections) by address.
#[derive(Debug)]
pub struct Connections {
    per_client: PerClient,
    open: Mutex<Open>,
    /// The gauge of all open ones, told each change.
    gauge: fn(f64),
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub struct Admitted {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// Connections held to `per_client`; `gauge` follows the total.
    pub fn new(per_client: PerClient, gauge: fn(f64)) -> Arc<Self> {
        Arc::new(Self { per_client, open: Mutex::default(), gauge })
    }

    /// Counts a new connection from `ip`, unless the per-client limit refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let Open { total, by_ip } = &mut *open;
        let mine = by_ip.entry(ip).or_default();
        if !self.per_client.allows(*total, *mine) {
            return None;
        }
        *mine += 1;
        *total += 1;
        (self.gauge)(1.0);
        Some(Admitted { connections: self.clone(), ip })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(PoisonError::into_inner);
        let Open { total, by_ip } = &mut *open;
        if let Some(mine) = by_ip.get_mut(&self.ip) {
            *mine -= 1;
            *total -= 1;
            if *mine == 0 {
                by_ip.remove(&self.ip);
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
        let connections = Connections::new(PerClient { limit: 2, busy_above: 0 }, |_| {});
        let first = connections.admit(subscriber(ip("2001:db8::1")));
        let second = connections.admit(subscriber(ip("2001:db8::2")));
        assert!(first.is_some() && second.is_some());
        assert!(connections.admit(subscriber(ip("2001:db8::3"))).is_none(), "a third address of the same /64");
        assert!(connections.admit(subscriber(ip("2001:db8:0:1::1"))).is_some(), "another /64 is another client");
        drop(first);
        assert!(connections.admit(subscriber(ip("2001:db8::4"))).is_some());
    }

    #[test]
    fn one_address_holds_any_number_until_the_relay_is_busy() {
        let connections = Connections::new(PerClient { limit: 2, busy_above: 5 }, |_| {});
        let carrier = ip("203.0.113.7");
        let phones: Vec<_> = (0..5).map(|_| connections.admit(carrier)).collect();
        assert!(phones.iter().all(Option::is_some), "five phones behind one carrier address");
        assert!(connections.admit(carrier).is_none(), "busy: that address is over its limit");
        let first = connections.admit(ip("198.51.100.1"));
        let second = connections.admit(ip("198.51.100.1"));
        assert!(first.is_some() && second.is_some(), "busy: everyone else still gets their two");
        assert!(connections.admit(ip("198.51.100.1")).is_none());
        drop(phones);
        assert!(connections.admit(carrier).is_some(), "no longer busy");
    }
}
