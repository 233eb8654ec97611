//! Feasibility-aware selection: a unit max-flow over (region, operator) groups.
//!
//! Network: source → region (cap: region slots left) → operator via one edge per
//! non-empty (region, operator) group (cap: unpicked peers in the group) → operator
//! (cap: operator slots left) → sink. A flow of value m is exactly a choice of m more
//! holders within the caps (peers of one group are interchangeable), so the picks so
//! far can be completed to `n` iff the max flow reaches `n − picked`.
//!
//! We keep such a flow `f` of value `m = n − picked`. A candidate in group `g = (r, o)`
//! is completable iff some value-m flow uses `g`: either `f(g) > 0`, or the residual
//! graph has a path `o ⇝ r` (then `r → o ⇝ r` is a cycle we push one unit around;
//! the difference of two value-m flows is a circulation, so this is also necessary).
//! Taking the candidate then removes one unit along source → r → o → sink.
//! A non-completable group stays so forever (the picks only grow), so it is marked
//! dead — along with every group proved non-completable by the same search.
//!
//! Cost: each search is O(groups + regions + operators). There are at most `n`
//! augmenting searches, at most `n` successful reroutes, and between two picks at most
//! one failed search per operator (a failure kills all of that operator's groups that
//! still lacked a route). Groups number at most min(peers, regions × operators).

use super::{Caps, Groups};
use std::collections::HashMap;

/// A residual edge, as recorded on the node it leads to.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// BFS root (or not reached).
    Root,
    /// source → region: more flow into the region.
    SourceRegion(u32),
    /// region → source: less flow into the region.
    RegionSource(u32),
    /// region → operator over group: more flow on the group.
    GroupForward(u32),
    /// operator → region over group: less flow on the group.
    GroupBackward(u32),
    /// operator → sink: more flow out of the operator.
    OperatorSink(u32),
    /// sink → operator: less flow out of the operator.
    SinkOperator(u32),
}

const SOURCE: usize = 0;
const SINK: usize = 1;

/// Capacities and a current flow; nodes are source, sink, regions, then operators.
struct Network {
    group_region: Vec<u32>,
    group_operator: Vec<u32>,
    group_cap: Vec<u32>,
    group_flow: Vec<u32>,
    region_cap: Vec<u32>,
    region_flow: Vec<u32>,
    operator_cap: Vec<u32>,
    operator_flow: Vec<u32>,
    region_groups: Vec<Vec<u32>>,
    operator_groups: Vec<Vec<u32>>,
}

/// Scratch space of one breadth-first search.
struct Search {
    mark: Vec<u32>,
    epoch: u32,
    step: Vec<Step>,
    queue: Vec<usize>,
}

impl Network {
    /// The network over `groups` with the caps, and each candidate's group index.
    fn build(groups: &Groups, caps: Caps) -> (Self, Vec<u32>) {
        let mut index: HashMap<(u32, u32), u32> = HashMap::new();
        let mut net = Network {
            group_region: Vec::new(),
            group_operator: Vec::new(),
            group_cap: Vec::new(),
            group_flow: Vec::new(),
            region_cap: vec![u32::try_from(caps.per_region).unwrap_or(u32::MAX); groups.regions],
            region_flow: vec![0; groups.regions],
            operator_cap: vec![
                u32::try_from(caps.per_operator).unwrap_or(u32::MAX);
                groups.operators
            ],
            operator_flow: vec![0; groups.operators],
            region_groups: vec![Vec::new(); groups.regions],
            operator_groups: vec![Vec::new(); groups.operators],
        };
        let mut group_of = Vec::with_capacity(groups.region.len());
        for (&r, &o) in groups.region.iter().zip(&groups.operator) {
            let g = *index.entry((r, o)).or_insert_with(|| {
                let g = net.group_cap.len() as u32;
                net.group_region.push(r);
                net.group_operator.push(o);
                net.group_cap.push(0);
                net.group_flow.push(0);
                net.region_groups[r as usize].push(g);
                net.operator_groups[o as usize].push(g);
                g
            });
            net.group_cap[g as usize] += 1;
            group_of.push(g);
        }
        (net, group_of)
    }

    fn nodes(&self) -> usize {
        2 + self.region_cap.len() + self.operator_cap.len()
    }

    fn region_node(&self, r: u32) -> usize {
        2 + r as usize
    }

    fn operator_node(&self, o: u32) -> usize {
        2 + self.region_cap.len() + o as usize
    }

    /// The node a residual step leaves from.
    fn origin(&self, step: Step) -> usize {
        match step {
            Step::Root => SOURCE,
            Step::SourceRegion(_) => SOURCE,
            Step::SinkOperator(_) => SINK,
            Step::RegionSource(r) => self.region_node(r),
            Step::OperatorSink(o) => self.operator_node(o),
            Step::GroupForward(g) => self.region_node(self.group_region[g as usize]),
            Step::GroupBackward(g) => self.operator_node(self.group_operator[g as usize]),
        }
    }

    /// Pushes one unit of flow along a residual step.
    fn push(&mut self, step: Step) {
        fn inc(x: &mut u32) {
            *x = x.saturating_add(1);
        }
        fn dec(x: &mut u32) {
            *x = x.saturating_sub(1);
        }
        match step {
            Step::Root => {}
            Step::SourceRegion(r) => inc(&mut self.region_flow[r as usize]),
            Step::RegionSource(r) => dec(&mut self.region_flow[r as usize]),
            Step::GroupForward(g) => inc(&mut self.group_flow[g as usize]),
            Step::GroupBackward(g) => dec(&mut self.group_flow[g as usize]),
            Step::OperatorSink(o) => inc(&mut self.operator_flow[o as usize]),
            Step::SinkOperator(o) => dec(&mut self.operator_flow[o as usize]),
        }
    }

    /// Residual edges leaving `node`, handed to `visit` until it returns `true`.
    fn for_each_residual(&self, node: usize, mut visit: impl FnMut(usize, Step) -> bool) -> bool {
        let regions = self.region_cap.len();
        if node == SOURCE {
            for r in 0..regions {
                if self.region_flow[r] < self.region_cap[r]
                    && visit(2 + r, Step::SourceRegion(r as u32))
                {
                    return true;
                }
            }
        } else if node == SINK {
            for (o, &flow) in self.operator_flow.iter().enumerate() {
                if flow > 0 && visit(2 + regions + o, Step::SinkOperator(o as u32)) {
                    return true;
                }
            }
        } else if node < 2 + regions {
            let r = node - 2;
            if self.region_flow[r] > 0 && visit(SOURCE, Step::RegionSource(r as u32)) {
                return true;
            }
            for &g in &self.region_groups[r] {
                let (gi, o) = (g as usize, self.group_operator[g as usize]);
                if self.group_flow[gi] < self.group_cap[gi]
                    && visit(self.operator_node(o), Step::GroupForward(g))
                {
                    return true;
                }
            }
        } else {
            let o = node - 2 - regions;
            if self.operator_flow[o] < self.operator_cap[o]
                && visit(SINK, Step::OperatorSink(o as u32))
            {
                return true;
            }
            for &g in &self.operator_groups[o] {
                let (gi, r) = (g as usize, self.group_region[g as usize]);
                if self.group_flow[gi] > 0 && visit(self.region_node(r), Step::GroupBackward(g)) {
                    return true;
                }
            }
        }
        false
    }

    /// Breadth-first search of the residual graph from `from`; on reaching `to`, pushes
    /// one unit along the path found and returns `true`. Afterwards `search.queue`
    /// holds every node reached.
    fn search_and_push(&mut self, search: &mut Search, from: usize, to: usize) -> bool {
        search.epoch = search.epoch.wrapping_add(1);
        if search.epoch == 0 {
            search.mark.fill(0);
            search.epoch = 1;
        }
        let epoch = search.epoch;
        search.queue.clear();
        search.queue.push(from);
        search.mark[from] = epoch;
        let mut head = 0;
        let mut found = false;
        while let Some(&node) = search.queue.get(head) {
            head += 1;
            let (mark, step, queue) = (&mut search.mark, &mut search.step, &mut search.queue);
            found = self.for_each_residual(node, |next, via| {
                if mark[next] != epoch {
                    mark[next] = epoch;
                    step[next] = via;
                    queue.push(next);
                }
                next == to
            });
            if found {
                break;
            }
        }
        if found {
            let mut node = to;
            // A BFS tree path has fewer edges than there are nodes.
            for _ in 0..self.nodes() {
                if node == from {
                    break;
                }
                let via = search.step[node];
                self.push(via);
                node = self.origin(via);
            }
        }
        found
    }

    /// Augments from the source up to value `target`; returns the value reached.
    fn augment_up_to(&mut self, search: &mut Search, target: usize) -> usize {
        let mut value = 0;
        while value < target && self.search_and_push(search, SOURCE, SINK) {
            value += 1;
        }
        value
    }

    /// Reroutes the flow so that group `g` carries a unit, if some flow of the same
    /// value can; otherwise marks every group the failed search proves unusable.
    fn force(&mut self, search: &mut Search, g: u32, dead: &mut [bool]) -> bool {
        let gi = g as usize;
        let (r, o) = (self.group_region[gi], self.group_operator[gi]);
        if self.group_flow[gi] > 0 {
            return true;
        }
        if self.group_cap[gi] == 0
            || self.region_cap[r as usize] == 0
            || self.operator_cap[o as usize] == 0
        {
            dead[gi] = true;
            return false;
        }
        let (from, to) = (self.operator_node(o), self.region_node(r));
        if self.search_and_push(search, from, to) {
            self.push(Step::GroupForward(g));
            return true;
        }
        // Every operator reached from `o` reaches no more than `o` does, so its groups
        // towards unreached regions cannot carry flow in any value-m flow either.
        let first_operator = 2 + self.region_cap.len();
        for &node in &search.queue {
            if node < first_operator {
                continue;
            }
            for &h in &self.operator_groups[node - first_operator] {
                let hi = h as usize;
                let region = self.region_node(self.group_region[hi]);
                if self.group_flow[hi] == 0 && search.mark[region] != search.epoch {
                    dead[hi] = true;
                }
            }
        }
        dead[gi] = true;
        false
    }

    /// Takes one peer of group `g`, which must carry flow: removes the unit source →
    /// r → o → sink and lowers the capacities it used.
    fn take(&mut self, g: u32) {
        let gi = g as usize;
        let (r, o) = (
            self.group_region[gi] as usize,
            self.group_operator[gi] as usize,
        );
        for x in [
            &mut self.group_cap[gi],
            &mut self.group_flow[gi],
            &mut self.region_cap[r],
            &mut self.region_flow[r],
            &mut self.operator_cap[o],
            &mut self.operator_flow[o],
        ] {
            *x = x.saturating_sub(1);
        }
    }
}

/// Candidate indices of the first valid quorum in `order`: each candidate is taken iff
/// the candidates taken so far plus it can be completed to `n` within the caps.
/// Returns the size of the largest valid holder set if it is below `n`.
pub(super) fn first_valid_in_order(
    groups: &Groups,
    order: &[usize],
    caps: Caps,
    n: usize,
) -> Result<Vec<usize>, usize> {
    let (mut net, group_of) = Network::build(groups, caps);
    let nodes = net.nodes();
    let mut search = Search {
        mark: vec![0; nodes],
        epoch: 0,
        step: vec![Step::Root; nodes],
        queue: Vec::with_capacity(nodes),
    };
    let largest = net.augment_up_to(&mut search, n);
    if largest < n {
        return Err(largest);
    }
    let mut dead = vec![false; net.group_cap.len()];
    let mut picked = Vec::with_capacity(n);
    for &i in order {
        let Some(&g) = group_of.get(i) else { continue };
        if dead[g as usize] || !net.force(&mut search, g, &mut dead) {
            continue;
        }
        net.take(g);
        picked.push(i);
        if picked.len() == n {
            return Ok(picked);
        }
    }
    // Unreachable: a value-m flow always runs through some group with an untried peer.
    Err(largest.min(picked.len()))
}
