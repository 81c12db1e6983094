//! The harness itself works end to end: a tiny run of every scenario produces a report
//! with measurements, raw SQL baselines, relay throughput and event lag, and no errors.

use std::process::Command;
use std::sync::Mutex;

/// One benchmark run at a time: each starts a stack of its own (pools, a service process,
/// up to 32 callers), and three at once can use up the database's connections, which is
/// the harness's limit, not the code's.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn a_short_run_of_every_scenario_reports_complete_figures() {
    let _turn = one_run_at_a_time();
    let report_path =
        std::env::temp_dir().join(format!("lyceum-bench-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_lyceum-bench"))
        .args([
            "--duration-secs",
            "1",
            "--warmup-secs",
            "0",
            "--concurrency",
            "4",
        ])
        .args([
            "--size",
            "500",
            "--relay-events",
            "2000",
            "--scaling-sizes",
            "0,2000",
        ])
        .args(["--courses", "200", "--enroll-scaling-sizes", "0,1000"])
        .arg("--json")
        .arg(&report_path)
        .output()
        .expect("lyceum-bench runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report_path);

    let comparisons = report["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 6);
    for comparison in comparisons {
        for side in ["service", "raw_sql"] {
            let measurement = &comparison[side];
            assert!(
                measurement["requests"].as_u64().unwrap() > 0,
                "{comparison}"
            );
            assert!(
                measurement["errors"].as_object().unwrap().is_empty(),
                "{comparison}"
            );
            assert!(
                measurement["p99_ms"].as_f64().unwrap() >= measurement["p50_ms"].as_f64().unwrap()
            );
        }
        assert!(comparison["throughput_ratio"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(report["scaling"].as_array().unwrap().len(), 2);
    assert_eq!(report["enroll_scaling"].as_array().unwrap().len(), 2);
    assert_eq!(report["relay"]["events"].as_i64().unwrap(), 2000);
    let lag = &report["event_lag"];
    assert!(lag["produced"].as_u64().unwrap() > 0);
    assert_eq!(lag["produced"], lag["applied"]);
    // The capacity primitive beside a bare conditional update, at 4 and 32 callers.
    let capacity = report["capacity"].as_array().unwrap();
    assert_eq!(capacity.len(), 2, "{capacity:?}");
    for cell in capacity {
        for side in [
            "conditional_update",
            "capacity_claim",
            "kit_claim_in_caller_transaction",
        ] {
            assert!(cell[side]["requests"].as_u64().unwrap() > 0, "{cell}");
            assert!(
                cell[side]["errors"].as_object().unwrap().is_empty(),
                "{cell}"
            );
        }
    }
    // Enroll's lag, measured against the service in its own process, with the CPU each
    // process spent.
    let enroll_lag = &report["enroll_lag"];
    assert!(enroll_lag["produced"].as_u64().unwrap() > 0);
    assert_eq!(enroll_lag["produced"], enroll_lag["applied"]);
    assert_eq!(
        enroll_lag["lag"]["requests"], enroll_lag["applied"],
        "{enroll_lag}"
    );
    for process in ["service", "postgres", "load_generator"] {
        assert!(
            enroll_lag["cpu_ms_per_enrollment"][process]
                .as_f64()
                .unwrap()
                > 0.0,
            "{enroll_lag}"
        );
    }
}

#[test]
fn the_dashboard_scenarios_run_on_a_small_volume_and_explain_their_plans() {
    let _turn = one_run_at_a_time();
    let plans = std::env::temp_dir().join(format!("lyceum-bench-plans-{}.txt", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_lyceum-bench"))
        .args([
            "--scenario",
            "dashboard",
            "--duration-secs",
            "1",
            "--warmup-secs",
            "0",
            "--concurrency",
            "2",
        ])
        .args([
            "--size",
            "100",
            "--courses",
            "10",
            "--dashboard-volume",
            "3,12,300,1200,50",
        ])
        .arg("--plans")
        .arg(&plans)
        .output()
        .expect("lyceum-bench runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for query in [
        "Stats",
        "StudentProgress",
        "RevenueBreakdown",
        "RecentActivity",
        "MonthlyRevenue",
        "Engagement",
    ] {
        assert!(
            stdout.contains(&format!("Dashboard {query} (service)")),
            "{stdout}"
        );
    }
    let text = std::fs::read_to_string(&plans).unwrap();
    let _ = std::fs::remove_file(&plans);
    // Six queries; Stats runs two statements (counts, earnings per currency).
    assert_eq!(text.matches("Execution Time").count(), 7, "{text}");
}

#[test]
fn the_enroll_matrix_measures_the_reference_designs_beside_enroll() {
    let _turn = one_run_at_a_time();
    let report_path =
        std::env::temp_dir().join(format!("lyceum-bench-matrix-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_lyceum-bench"))
        .args(["--scenario", "enroll-matrix", "--duration-secs", "1"])
        .args(["--warmup-secs", "0", "--size", "100", "--courses", "10"])
        .args(["--matrix-sizes", "0,500", "--matrix-callers", "2"])
        .args(["--matrix-courses", "1,3", "--json"])
        .arg(&report_path)
        .output()
        .expect("lyceum-bench runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report_path);
    let cells = report["enroll_matrix"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "2 sizes × 2 spreads × 1 caller count");
    for cell in cells {
        for design in [
            "seeds_recount",
            "one_statement",
            "enroll_free",
            "enroll_paid",
            "replayed_statements",
        ] {
            let measurement = &cell[design];
            assert!(measurement["requests"].as_u64().unwrap() > 0, "{cell}");
            assert!(
                measurement["errors"].as_object().unwrap().is_empty(),
                "{cell}"
            );
        }
        assert!(cell["free_vs_one_statement"].as_f64().unwrap() > 0.0);
    }
}
