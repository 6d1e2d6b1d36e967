//! THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 2.2, 4): the
//! matched messages arranged in threads, written as the THREAD response's
//! nested lists. Every step is linear or n log n in the messages, and loops
//! in References are never followed.

use super::sort::Facts;
use std::collections::HashMap;

/// One node: a message (index into the facts) or a dummy standing for a
/// message referred to but not here.
#[derive(Default, Clone)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// The THREAD response's data for `facts` (the matched messages): `(1)(2
/// 3)...`, naming each by UID when `uid`, else by sequence number.
pub fn ordered_subject(facts: &[Facts], uid: bool) -> String {
    let mut idx: Vec<usize> = (0..facts.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (&facts[a], &facts[b]);
        (&x.subject, x.sent, x.seq).cmp(&(&y.subject, y.sent, y.seq))
    });
    let mut threads: Vec<Vec<usize>> = Vec::new();
    for i in idx {
        match threads.last_mut() {
            Some(t) if facts[t[0]].subject == facts[i].subject => t.push(i),
            _ => threads.push(vec![i]),
        }
    }
    threads.sort_by_key(|t| (facts[t[0]].sent, facts[t[0]].seq));
    let name = |i: usize| number(&facts[i], uid);
    let mut out = String::new();
    for t in threads {
        out.push('(');
        out.push_str(&name(t[0]));
        match t.len() {
            1 => {}
            2 => out.push_str(&format!(" {}", name(t[1]))),
            _ => {
                out.push(' ');
                for &c in &t[1..] {
                    out.push_str(&format!("({})", name(c)));
                }
            }
        }
        out.push(')');
    }
    out
}

fn number(f: &Facts, uid: bool) -> String {
    if uid { f.uid } else { f.seq }.to_string()
}

struct Tree<'a> {
    facts: &'a [Facts],
    nodes: Vec<Node>,
}

impl Tree<'_> {
    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(b);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            steps += 1;
            if steps > self.nodes.len() {
                return true;
            }
            cur = self.nodes[c].parent;
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The date a node sorts by: its message's, or a dummy's first child's.
    fn date(&self, n: usize) -> (i64, u32) {
        match self.nodes[n].msg {
            Some(m) => (self.facts[m].sent, self.facts[m].seq),
            None => self.nodes[n]
                .children
                .first()
                .map(|&c| self.date(c))
                .unwrap_or((0, 0)),
        }
    }

    /// A node's subject for grouping: its message's, or its first child's.
    fn subject(&self, n: usize) -> Option<(&str, bool)> {
        let m = match self.nodes[n].msg {
            Some(m) => m,
            None => self.nodes[n]
                .children
                .first()
                .and_then(|&c| self.nodes[c].msg)?,
        };
        let f = &self.facts[m];
        Some((f.subject.as_str(), f.reply))
    }

    /// RFC 5256 step 3 for the root set: dummies without children go; a
    /// dummy's children take its place, except at the top when it has more
    /// than one.
    fn prune_roots(&mut self, roots: Vec<usize>) -> Vec<usize> {
        let mut out = Vec::new();
        for n in roots {
            let kids = std::mem::take(&mut self.nodes[n].children);
            let kids = self.prune_children(kids);
            if self.nodes[n].msg.is_none() && kids.len() <= 1 {
                for &k in &kids {
                    self.nodes[k].parent = None;
                }
                out.extend(kids);
                continue;
            }
            for &k in &kids {
                self.nodes[k].parent = Some(n);
            }
            self.nodes[n].children = kids;
            out.push(n);
        }
        out
    }

    fn prune_children(&mut self, kids: Vec<usize>) -> Vec<usize> {
        if kids.is_empty() {
            return kids;
        }
        // Children of children first, bottom up, without recursion.
        let mut order = Vec::new();
        let mut stack = kids.clone();
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend(self.nodes[n].children.iter().copied());
        }
        for &n in order.iter().rev() {
            let mut kept = Vec::new();
            for c in std::mem::take(&mut self.nodes[n].children) {
                let ck = &self.nodes[c];
                if ck.msg.is_none() {
                    // A dummy below the top: its children move up here.
                    let grand = std::mem::take(&mut self.nodes[c].children);
                    for &g in &grand {
                        self.nodes[g].parent = Some(n);
                    }
                    kept.extend(grand);
                } else {
                    kept.push(c);
                }
            }
            self.nodes[n].children = kept;
        }
        let mut out = Vec::new();
        for k in kids {
            if self.nodes[k].msg.is_none() {
                let grand = std::mem::take(&mut self.nodes[k].children);
                out.extend(grand);
            } else {
                out.push(k);
            }
        }
        out
    }

    fn sort_all(&mut self, roots: &mut [usize]) {
        let mut stack: Vec<usize> = roots.to_vec();
        let mut seen = 0usize;
        while let Some(n) = stack.pop() {
            seen += 1;
            if seen > self.nodes.len() * 2 {
                break;
            }
            // Below the top there are no dummies, so a child's date is its
            // own and the order of levels does not matter.
            let mut kids = std::mem::take(&mut self.nodes[n].children);
            stack.extend(kids.iter().copied());
            kids.sort_by_key(|&k| self.date(k));
            self.nodes[n].children = kids;
        }
        roots.sort_by_key(|&r| self.date(r));
    }

    fn write(&self, n: usize, uid: bool, out: &mut String) {
        // (node, whether to open a list before it)
        let mut stack: Vec<Step> = vec![Step::Node(n)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Text(t) => out.push_str(t),
                Step::Node(n) => {
                    let node = &self.nodes[n];
                    if let Some(m) = node.msg {
                        out.push_str(&number(&self.facts[m], uid));
                    }
                    match node.children.len() {
                        0 => {}
                        1 if node.msg.is_some() => {
                            out.push(' ');
                            stack.push(Step::Node(node.children[0]));
                        }
                        _ => {
                            if node.msg.is_some() {
                                out.push(' ');
                            }
                            for &c in node.children.iter().rev() {
                                stack.push(Step::Text(")"));
                                stack.push(Step::Node(c));
                                stack.push(Step::Text("("));
                            }
                        }
                    }
                }
            }
        }
    }
}

enum Step {
    Node(usize),
    Text(&'static str),
}

/// THREAD=REFERENCES (RFC 5256 2.2 steps 1-6).
pub fn references(facts: &[Facts], uid: bool) -> String {
    let mut t = Tree {
        facts,
        nodes: Vec::with_capacity(facts.len() * 2),
    };
    let mut by_id: HashMap<String, usize> = HashMap::new();
    // (1) A node per message and per id referred to; links along References.
    for (i, f) in facts.iter().enumerate() {
        let own = match f.message_id.as_ref() {
            Some(id) => match by_id.get(id).copied() {
                Some(n) if t.nodes[n].msg.is_none() => {
                    t.nodes[n].msg = Some(i);
                    n
                }
                // A duplicate id: this message gets a node of its own.
                Some(_) => new_node(&mut t, Some(i)),
                None => {
                    let n = new_node(&mut t, Some(i));
                    by_id.insert(id.clone(), n);
                    n
                }
            },
            None => new_node(&mut t, Some(i)),
        };
        let mut prev: Option<usize> = None;
        for r in &f.references {
            let n = match by_id.get(r) {
                Some(&n) => n,
                None => {
                    let n = new_node(&mut t, None);
                    by_id.insert(r.clone(), n);
                    n
                }
            };
            if let Some(p) = prev {
                if t.nodes[n].parent.is_none() && p != n && !t.is_ancestor(n, p) {
                    t.link(p, n);
                }
            }
            prev = Some(n);
        }
        // The last reference is this message's parent, unless that loops.
        match prev {
            Some(p) if p != own && !t.is_ancestor(own, p) => t.link(p, own),
            _ => t.unlink(own),
        }
    }
    // (2) The root set; (3) dummies pruned.
    let roots: Vec<usize> = (0..t.nodes.len())
        .filter(|&n| t.nodes[n].parent.is_none())
        .collect();
    let mut roots = t.prune_roots(roots);
    // (4) Sorted by date.
    t.sort_all(&mut roots);
    // (5) Roots with the same base subject are gathered.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &r in &roots {
        let Some((s, reply)) = t.subject(r) else {
            continue;
        };
        if s.is_empty() {
            continue;
        }
        let s = s.to_string();
        let replace = match table.get(&s) {
            None => true,
            Some(&old) => {
                let old_dummy = t.nodes[old].msg.is_none();
                let this_dummy = t.nodes[r].msg.is_none();
                let old_reply = t.subject(old).is_some_and(|x| x.1);
                (this_dummy && !old_dummy) || (old_reply && !reply)
            }
        };
        if replace {
            table.insert(s, r);
        }
    }
    let mut merged: Vec<usize> = Vec::new();
    let mut gone = vec![false; t.nodes.len()];
    for &r in &roots {
        let Some((s, reply)) = t.subject(r).map(|(s, x)| (s.to_string(), x)) else {
            merged.push(r);
            continue;
        };
        let Some(&keep) = table.get(&s).filter(|_| !s.is_empty()) else {
            merged.push(r);
            continue;
        };
        if keep == r || gone[r] {
            if !gone[r] {
                merged.push(r);
            }
            continue;
        }
        let keep_dummy = t.nodes[keep].msg.is_none();
        let this_dummy = t.nodes[r].msg.is_none();
        let keep_reply = t.subject(keep).is_some_and(|x| x.1);
        if keep_dummy && this_dummy {
            for c in std::mem::take(&mut t.nodes[r].children) {
                t.nodes[c].parent = None;
                t.link(keep, c);
            }
        } else if keep_dummy || (reply && !keep_reply) {
            t.link(keep, r);
        } else {
            // Neither is the other's reply: both go under a new dummy, which
            // takes the kept one's place.
            let d = new_node(&mut t, None);
            gone.push(false);
            let at = merged.iter().position(|&m| m == keep);
            t.link(d, keep);
            t.link(d, r);
            if let Some(s_) = table.get_mut(&s) {
                *s_ = d;
            }
            match at {
                Some(i) => merged[i] = d,
                None => {
                    // The kept one comes later in the list: mark it replaced.
                    gone[keep] = true;
                    merged.push(d);
                }
            }
        }
        gone[r] = true;
    }
    let mut roots: Vec<usize> = merged
        .into_iter()
        .filter(|&n| t.nodes[n].parent.is_none())
        .collect();
    // (6) Every level in date order.
    t.sort_all(&mut roots);
    let mut out = String::new();
    for r in roots {
        out.push('(');
        t.write(r, uid, &mut out);
        out.push(')');
    }
    out
}

fn new_node(t: &mut Tree<'_>, msg: Option<usize>) -> usize {
    t.nodes.push(Node {
        msg,
        ..Default::default()
    });
    t.nodes.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(seq: u32, subject: &str, sent: i64, id: &str, refs: &[&str]) -> Facts {
        let (s, reply) = super::super::sort::base_subject(subject);
        Facts {
            seq,
            uid: seq + 100,
            sent,
            subject: s.to_ascii_uppercase(),
            reply,
            message_id: (!id.is_empty()).then(|| id.to_string()),
            references: refs.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let f = vec![
            fact(1, "a", 10, "", &[]),
            fact(2, "b", 20, "", &[]),
            fact(3, "Re: a", 30, "", &[]),
            fact(4, "Re: b", 40, "", &[]),
            fact(5, "Re: a", 50, "", &[]),
            fact(6, "c", 5, "", &[]),
        ];
        assert_eq!(ordered_subject(&f, false), "(6)(1 (3)(5))(2 4)");
        assert_eq!(ordered_subject(&f[5..], true), "(106)");
    }

    #[test]
    fn references_build_trees_and_survive_loops() {
        let f = vec![
            fact(1, "start", 10, "<a>", &[]),
            fact(2, "Re: start", 20, "<b>", &["<a>"]),
            fact(3, "Re: start", 30, "<c>", &["<a>", "<b>"]),
            fact(4, "Re: start", 25, "<d>", &["<a>"]),
            // Its parent is missing: a dummy, pruned, it joins by subject.
            fact(5, "other", 5, "<e>", &["<gone>"]),
            fact(6, "Re: other", 6, "<f>", &["<gone2>"]),
            // A loop: each names the other.
            fact(7, "x", 40, "<x>", &["<y>"]),
            fact(8, "x", 41, "<y>", &["<x>"]),
        ];
        let out = references(&f, false);
        assert!(out.contains("(1 (2 3)(4))"), "{out}");
        assert!(out.starts_with("(5 6)"), "{out}");
        // Both loop members appear exactly once.
        assert_eq!(out.matches('7').count(), 1, "{out}");
        assert_eq!(out.matches('8').count(), 1, "{out}");
        // Deep chains neither recurse nor loop.
        let deep: Vec<Facts> = (1..=5000)
            .map(|i| {
                let refs = if i > 1 {
                    vec![format!("<{}>", i - 1)]
                } else {
                    vec![]
                };
                let r: Vec<&str> = refs.iter().map(String::as_str).collect();
                fact(i, "deep", i as i64, &format!("<{i}>"), &r)
            })
            .collect();
        let out = references(&deep, false);
        assert!(
            out.starts_with("(1 2 3 ") && out.ends_with(" 4999 5000)"),
            "{}",
            &out[..50]
        );
    }
}
