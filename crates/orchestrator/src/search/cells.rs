//! The plan's cells as the search walks them: each cell's learning rates, seeds and jobs.

use thaw_analysis::cells::CellKey;

use crate::plan::{JobPlan, Plan};

/// One cell of the plan: its learning rates and seeds, in plan order.
pub(super) struct PlanCell<'a> {
    pub key: CellKey,
    pub lrs: Vec<f64>,
    pub seeds: Vec<u64>,
    pub jobs: Vec<&'a JobPlan>,
}

impl PlanCell<'_> {
    pub fn job(&self, lr: f64, seed: u64) -> &JobPlan {
        self.jobs
            .iter()
            .find(|j| j.lr == lr && j.spec.seed == seed)
            .expect("the plan has every (lr, seed) of a cell")
    }

    pub fn json(&self) -> String {
        serde_json::to_string(&self.key).expect("json")
    }
}

/// "1 cell", "3 cells".
pub(super) fn cells_text(n: usize) -> String {
    format!("{n} cell{}", if n == 1 { "" } else { "s" })
}

pub(super) fn plan_cells(plan: &Plan) -> Vec<PlanCell<'_>> {
    let mut out: Vec<PlanCell> = Vec::new();
    for job in &plan.jobs {
        let key = job.cell_key();
        let index = match out.iter().position(|c| c.key == key) {
            Some(i) => i,
            None => {
                out.push(PlanCell { key, lrs: Vec::new(), seeds: Vec::new(), jobs: Vec::new() });
                out.len() - 1
            }
        };
        let cell = &mut out[index];
        if !cell.lrs.contains(&job.lr) {
            cell.lrs.push(job.lr);
        }
        if !cell.seeds.contains(&job.spec.seed) {
            cell.seeds.push(job.spec.seed);
        }
        cell.jobs.push(job);
    }
    out
}
