//! `USER` resolution inside the container's root: `name`, `uid`, `name:group`, `uid:gid`,
//! through `/etc/passwd` and `/etc/group`. Numeric ids need neither file; a name that is
//! not there is an error naming the file. Supplementary groups come from `/etc/group`.
//! `home` is the passwd entry's home directory of the resolved uid, `/` when there is
//! none (what runc gives `HOME` when the environment has no `HOME`).

use std::fs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub home: String,
}

/// `(name, uid, gid, home)` entries of a passwd-style file.
fn passwd(text: &str) -> Vec<(String, u32, u32, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let home = f.get(5).filter(|h| !h.is_empty()).unwrap_or(&"/").to_string();
            Some((f[0].to_string(), f[2].parse().ok()?, f[3].parse().ok()?, home))
        })
        .collect()
}

/// `(name, gid, members)` entries of a group file.
fn group(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolves `spec` against the files of the current root.
pub fn resolve(spec: &str) -> Result<Ids, String> {
    let pw = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let gr = fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_in(spec, &pw, &gr)
}

pub fn resolve_in(spec: &str, passwd_text: &str, group_text: &str) -> Result<Ids, String> {
    let users = passwd(passwd_text);
    let home_of = |uid: u32| users.iter().find(|e| e.1 == uid).map_or_else(|| "/".to_string(), |e| e.3.clone());
    if spec.is_empty() {
        return Ok(Ids { uid: 0, gid: 0, groups: Vec::new(), home: home_of(0) });
    }
    let groups = group(group_text);
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary, name) = match u.parse::<u32>() {
        Ok(n) => {
            let e = users.iter().find(|e| e.1 == n);
            (n, e.map_or(0, |e| e.2), e.map(|e| e.0.clone()))
        }
        Err(_) => match users.iter().find(|e| e.0 == u) {
            Some(e) => (e.1, e.2, Some(e.0.clone())),
            // `root` is uid 0 even in an image whose /etc/passwd does not list it.
            None if u == "root" => (0, 0, Some("root".to_string())),
            None => return Err(format!("unable to find user `{u}`: no matching entries in /etc/passwd")),
        },
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|e| e.0 == g)
                .map(|e| e.1)
                .ok_or_else(|| format!("unable to find group `{g}`: no matching entries in /etc/group"))?,
        },
    };
    let mut sup: Vec<libc::gid_t> = vec![gid];
    if g.is_none() {
        if let Some(n) = &name {
            for e in &groups {
                if e.2.contains(n) && !sup.contains(&e.1) {
                    sup.push(e.1);
                }
            }
        }
    }
    Ok(Ids { uid, gid, groups: sup, home: home_of(uid) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GR: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n";

    #[test]
    fn names_ids_and_groups() {
        let ids = |uid, gid, groups: Vec<u32>, home: &str| Ids { uid, gid, groups, home: home.into() };
        assert_eq!(resolve_in("", PW, GR).unwrap(), ids(0, 0, vec![], "/root"));
        assert_eq!(resolve_in("app", PW, GR).unwrap(), ids(1000, 1000, vec![1000, 50], "/home/app"));
        assert_eq!(resolve_in("app:staff", PW, GR).unwrap(), ids(1000, 50, vec![50], "/home/app"));
        assert_eq!(resolve_in("1234:99", "", "").unwrap(), ids(1234, 99, vec![99], "/"));
        assert_eq!(resolve_in("", "", "").unwrap().home, "/", "no passwd: HOME is /, as runc gives it");
        assert_eq!(resolve_in("1000", PW, GR).unwrap().home, "/home/app");
        assert_eq!(resolve_in("1000", PW, GR).unwrap().gid, 1000);
        assert!(resolve_in("nobody", PW, GR).unwrap_err().contains("/etc/passwd"));
        assert_eq!(resolve_in("root", "", "").unwrap().uid, 0);
        assert!(resolve_in("app:nogroup", PW, GR).unwrap_err().contains("/etc/group"));
    }
}
