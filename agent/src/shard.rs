//! Scale-out: `--shard I/N` measures a deterministic share of the benchmarks, so N hosts
//! can each take one share with base and head paired on the same host. The split depends
//! only on the benchmark ids and their known durations, never on the order they were
//! found in, so every shard computes the same partition independently.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Share `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not I/N with 1 <= I <= N (e.g. 2/3)");
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl TryFrom<String> for Shard {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

/// The shard (1-based) of each of `ids`, in their order. With no weight known the sorted
/// ids are dealt round-robin; otherwise heaviest first onto the lightest shard (ties: by
/// id, and onto the lowest index), a benchmark without a weight counting as the median
/// known weight.
pub fn assign(ids: &[String], weights: &BTreeMap<String, f64>, count: u32) -> Vec<u32> {
    let count = count.max(1) as usize;
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort();
    sorted.dedup();
    let known: Vec<f64> = sorted
        .iter()
        .filter_map(|id| weights.get(*id).copied())
        .filter(|w| w.is_finite() && *w >= 0.0)
        .collect();
    let mut of: BTreeMap<&str, u32> = BTreeMap::new();
    if known.is_empty() {
        for (i, id) in sorted.iter().enumerate() {
            of.insert(id.as_str(), (i % count) as u32 + 1);
        }
    } else {
        let median = crate::stats::median(known);
        let weight = |id: &str| {
            weights
                .get(id)
                .copied()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .unwrap_or(median)
        };
        let mut heaviest: Vec<(&str, f64)> =
            sorted.iter().map(|id| (id.as_str(), weight(id))).collect();
        heaviest.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut load = vec![0.0_f64; count];
        for (id, w) in heaviest {
            let lightest = (0..count)
                .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
                .expect("count >= 1");
            load[lightest] += w;
            of.insert(id, lightest as u32 + 1);
        }
    }
    ids.iter().map(|id| of[id.as_str()]).collect()
}

/// Per-benchmark seconds of one pair (base + head) in a previous report: the weights that
/// balance the next split.
pub fn weights_from(report: &crate::report::Report) -> BTreeMap<String, f64> {
    let mut sum: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for p in &report.samples {
        let secs: f64 = [p.base, p.head].iter().flatten().map(|m| m.wall_s).sum();
        let e = sum.entry(p.benchmark.clone()).or_default();
        e.0 += secs;
        e.1 += 1;
    }
    sum.into_iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(id, (s, n))| (id, s / f64::from(n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("micro/b{i:02}")).collect()
    }

    #[test]
    fn shards_parse_and_print_as_i_of_n() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!((s.index, s.count), (2, 3));
        assert_eq!(s.to_string(), "2/3");
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"2/3\"");
        assert!(serde_json::from_str::<Shard>("\"5/3\"").is_err());
    }

    #[test]
    fn every_benchmark_is_in_exactly_one_shard() {
        let ids = ids(10);
        let of = assign(&ids, &BTreeMap::new(), 3);
        for shard in 1..=3 {
            let n = of.iter().filter(|&&s| s == shard).count();
            assert!((3..=4).contains(&n), "round-robin is even: {of:?}");
        }
        assert!(of.iter().all(|s| (1..=3).contains(s)));
    }

    #[test]
    fn the_split_does_not_depend_on_the_order_found() {
        let ids = ids(9);
        let weights: BTreeMap<String, f64> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(i, id)| (id.clone(), (i * 7 % 5) as f64 + 0.5))
            .collect();
        for w in [BTreeMap::new(), weights] {
            let forward = assign(&ids, &w, 3);
            let mut reversed = ids.clone();
            reversed.reverse();
            let backward = assign(&reversed, &w, 3);
            for (i, id) in ids.iter().enumerate() {
                let j = reversed.iter().position(|r| r == id).unwrap();
                assert_eq!(forward[i], backward[j], "{id}");
            }
        }
    }

    #[test]
    fn known_durations_balance_the_shards() {
        let ids = ids(9);
        let mut weights: BTreeMap<String, f64> = ids.iter().map(|id| (id.clone(), 1.0)).collect();
        weights.insert(ids[0].clone(), 8.0);
        let of = assign(&ids, &weights, 3);
        let heavy = of[0];
        assert_eq!(
            of.iter().filter(|&&s| s == heavy).count(),
            1,
            "the 8-second benchmark has a shard to itself: {of:?}"
        );
        let load = |s: u32| -> f64 {
            ids.iter()
                .zip(&of)
                .filter(|(_, x)| **x == s)
                .map(|(id, _)| weights[id])
                .sum()
        };
        let max = (1..=3).map(load).fold(0.0, f64::max);
        assert_eq!(max, 8.0, "the best possible maximum load");
    }

    #[test]
    fn one_shard_keeps_all_and_extra_shards_stay_empty() {
        let ids = ids(2);
        assert_eq!(assign(&ids, &BTreeMap::new(), 1), [1, 1]);
        let of = assign(&ids, &BTreeMap::new(), 4);
        assert_eq!(of, [1, 2]);
    }
}
