//! The node's users and groups, by name and id, from the root's `/etc/passwd` and
//! `/etc/group`.
//!
//! Why from the files and not NSS: kharden works on a node under `--root` (a mounted image, the
//! simulated node), where the host's NSS would answer for another system. The audit names
//! owners as `stat` prints them (`UNKNOWN` for an id without a name, as kube-bench sees it);
//! a metadata change only gives a file to a user and group that exist in these tables; reports
//! name owners in diffs.

use std::collections::BTreeMap;

/// Owner names from the root's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    users: BTreeMap<u32, String>,
    groups: BTreeMap<u32, String>,
}

impl Names {
    /// The tables of the node under `root` (empty tables where a file cannot be read: names
    /// are then shown as numbers, and no owner change can be planned).
    pub fn of_root(root: &crate::root::HostRoot, storage: &dyn crate::durable::Storage) -> Names {
        let read = |host: &str| -> String {
            root.resolve(host)
                .ok()
                .and_then(|p| storage.read(&p).ok().flatten())
                .map(|s| String::from_utf8_lossy(&s.contents).into_owned())
                .unwrap_or_default()
        };
        Names::parse(&read("/etc/passwd"), &read("/etc/group"))
    }

    /// The tables of `/etc/passwd` and `/etc/group` texts.
    pub fn parse(passwd: &str, group: &str) -> Names {
        let table = |text: &str| -> BTreeMap<u32, String> {
            let mut m = BTreeMap::new();
            for line in text.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if let (Some(name), Some(id)) = (f.first(), f.get(2)) {
                    if let Ok(id) = id.parse::<u32>() {
                        // The first entry of an id is the name `stat` prints.
                        m.entry(id).or_insert_with(|| name.to_string());
                    }
                }
            }
            m
        };
        let mut users = table(passwd);
        let mut groups = table(group);
        // Id 0 is root on every Linux system, even one whose tables under --root are missing
        // (a bare image, a test node): as the catalog's account check takes it.
        users.entry(0).or_insert_with(|| "root".into());
        groups.entry(0).or_insert_with(|| "root".into());
        Names { users, groups }
    }

    pub fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| "UNKNOWN".into())
    }

    pub fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| "UNKNOWN".into())
    }

    /// The id of the user named `name`, if the node has one.
    pub fn uid_of(&self, name: &str) -> Option<u32> {
        self.users
            .iter()
            .find_map(|(id, n)| (n == name).then_some(*id))
    }

    /// The id of the group named `name`, if the node has one.
    pub fn gid_of(&self, name: &str) -> Option<u32> {
        self.groups
            .iter()
            .find_map(|(id, n)| (n == name).then_some(*id))
    }

    /// `root:root`, with the numeric ids when a name is unknown (`1000:UNKNOWN` would say
    /// less than `1000:1000`).
    pub fn owner(&self, uid: u32, gid: u32) -> String {
        let u = self
            .users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string());
        let g = self
            .groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string());
        format!("{u}:{g}")
    }

    pub fn accounts(&self) -> kharden_catalog::Accounts {
        kharden_catalog::Accounts {
            users: self.users.values().cloned().collect(),
            groups: self.groups.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_both_ways_first_entry_wins() {
        let n = Names::parse(
            "root:x:0:0:root:/root:/bin/bash\netcd:x:998:997::/var/lib/etcd:/sbin/nologin\ntoor:x:0:0::/:/bin/sh\n",
            "root:x:0:\netcd:x:997:\n",
        );
        assert_eq!(n.user(0), "root");
        assert_eq!(n.user(998), "etcd");
        assert_eq!(n.user(5), "UNKNOWN");
        assert_eq!(n.uid_of("etcd"), Some(998));
        assert_eq!(n.gid_of("etcd"), Some(997));
        assert_eq!(n.uid_of("kube"), None);
        assert_eq!(n.owner(998, 997), "etcd:etcd");
        assert_eq!(n.owner(1000, 0), "1000:root");
    }
}
