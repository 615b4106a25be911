//! The default scenario and the models it uses, built into the binary so
//! `tailor demo` runs anywhere, without the repository's files.

use std::collections::BTreeMap;
use std::path::Path;

use super::models::{ModelError, ModelSpec, parse_model};
use super::scenario::{Scenario, ScenarioError};

const DEFAULT_SCENARIO: &str = include_str!("../../simulations/default.yaml");

const MODELS: &[(&str, &str)] = &[
    ("diurnal-web", include_str!("../../models/diurnal-web.yaml")),
    (
        "microburst-latency",
        include_str!("../../models/microburst-latency.yaml"),
    ),
    ("jvm-service", include_str!("../../models/jvm-service.yaml")),
    ("batch-cron", include_str!("../../models/batch-cron.yaml")),
    ("memory-leak", include_str!("../../models/memory-leak.yaml")),
    ("idle", include_str!("../../models/idle.yaml")),
];

pub fn default_scenario() -> Result<Scenario, ScenarioError> {
    Scenario::from_yaml(DEFAULT_SCENARIO, Path::new("simulations/default.yaml"))
}

/// The built-in models by name (the trace model needs files, so it is not here).
pub fn models() -> Result<BTreeMap<String, ModelSpec>, ModelError> {
    MODELS
        .iter()
        .map(|(name, text)| {
            let origin = format!("models/{name}.yaml");
            parse_model(text, Path::new(&origin)).map(|m| (name.to_string(), m))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_scenario_and_models_load() {
        let scenario = super::default_scenario().expect("default scenario");
        let models = super::models().expect("models");
        for entry in &scenario.fleet {
            assert!(
                models.contains_key(&entry.model),
                "{} is built in",
                entry.model
            );
        }
    }
}
