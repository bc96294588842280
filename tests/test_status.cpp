#include <azops/status.hpp>

#include <doctest/doctest.h>

#include <chrono>

namespace {

azops::OpsStatus every_field_set() {
    azops::OpsStatus s;
    s.operation = "docker_build";
    s.phase = "installing_dependencies";
    s.step = 7;
    s.total_steps = 21;
    s.progress_pct = 33.5;
    s.log_tail = {"#24 41.07 Collecting gymnasium", "line two"};
    s.started_at = "2026-11-29T03:00:00Z";
    s.elapsed_seconds = 812.5;
    s.eta_seconds = 1200.0;
    s.cost_usd = 0.102;
    s.hourly_rate_usd = 0.452;
    s.vm_ip = "20.55.1.2";
    s.vm_state = "running";
    s.vnc_url = "http://localhost:8006";
    s.error = "none yet";
    s.task = "setup-waa";
    s.state = "running";
    s.detail = "RUN pip3 install --no-cache-dir";
    s.updated_at = "2026-11-29T03:13:32Z";
    s.projected_cost_usd = 0.253;
    s.eta_source = "blend";
    s.vm_name = "waa-eval-vm";
    s.vm_size = "Standard_D8ds_v5";
    s.region = "eastus";
    s.timeline = {{"vm_create", "succeeded", "2026-11-29T03:00:00Z", std::string("2026-11-29T03:02:10Z"), 130.0},
                  {"docker_build", "running", "2026-11-29T03:05:00Z", std::nullopt, 512.0}};
    s.cancellable = true;
    s.stalled_seconds = 400.0;
    s.status_file = "/home/u/benchmark_results/azure_ops_status.json";
    s.eta_low_seconds = 900.0;
    s.eta_high_seconds = 1500.0;
    s.rate_source = "built-in table";
    s.rate_known = true;
    s.billing_assumed = true;
    s.stalled_cost_usd = 0.05;
    s.idle_deallocate_at = "2026-11-29T05:00:00Z";
    s.notice = "a notice";
    s.tasks_succeeded = 3;
    s.tasks_failed = 1;
    s.log_partial = true;
    return s;
}

}  // namespace

TEST_CASE("status: every field survives a JSON round trip") {
    const azops::OpsStatus s = every_field_set();
    const std::string text = azops::to_json_text(s);
    const auto parsed = azops::parse_status(text);
    REQUIRE(parsed.status.has_value());
    CHECK(azops::to_json_text(*parsed.status) == text);
    CHECK(parsed.status->timeline.at(0).ended_at == std::optional<std::string>("2026-11-29T03:02:10Z"));
    CHECK_FALSE(parsed.status->timeline.at(1).ended_at.has_value());
}

TEST_CASE("status: the JSON carries every field of the status-file table with its type") {
    const nlohmann::json j = every_field_set();
    for (const char* key : {"operation", "phase", "log_tail", "started_at", "schema", "task", "state", "detail",
                            "updated_at", "eta_source", "timeline", "status_file"}) {
        CHECK_MESSAGE(j.contains(key), key);
    }
    CHECK(j["schema"] == "azops.status/1");
    CHECK(j["step"].is_number_integer());
    CHECK(j["total_steps"].is_number_integer());
    CHECK(j["progress_pct"].is_number());
    CHECK(j["log_tail"].is_array());
    CHECK(j["cancellable"].is_boolean());
    CHECK(j["log_partial"].is_boolean());
    CHECK(j["timeline"][0]["duration_seconds"] == 130.0);
}

TEST_CASE("status: absent values are written as null, never dropped") {
    const nlohmann::json j = azops::OpsStatus{};
    CHECK(j.at("eta_seconds").is_null());
    CHECK(j.at("vm_ip").is_null());
    CHECK(j.at("error").is_null());
    CHECK(j.at("stalled_seconds").is_null());
}

TEST_CASE("status: a document of the original tooling (first fields only) still loads") {
    const auto parsed = azops::parse_status(
        R"({"operation":"docker_build","phase":"building","step":3,"total_steps":12,"progress_pct":25,)"
        R"("log_tail":["Step 3/12 : RUN apt-get update"],"started_at":"2026-01-02T10:00:00Z",)"
        R"("elapsed_seconds":300,"eta_seconds":null,"cost_usd":0.07,"hourly_rate_usd":0.844,)"
        R"("vm_ip":null,"vm_state":"running","vnc_url":null,"error":null})");
    REQUIRE(parsed.status.has_value());
    CHECK(parsed.status->step == 3);
    CHECK(parsed.status->hourly_rate_usd == 0.844);
    CHECK(parsed.status->schema == "azops.status/1");
}

TEST_CASE("status: bad documents are reported, not thrown") {
    CHECK(azops::parse_status("").error == "not valid JSON");
    CHECK(azops::parse_status("{\"operation\":\"docker_b").error == "not valid JSON");
    CHECK(azops::parse_status("{\"a\":1}garbage").error == "not valid JSON");
    CHECK(azops::parse_status("[1,2]").error == "not a JSON object");
    const auto wrong = azops::parse_status(R"({"step":"three"})");
    CHECK_FALSE(wrong.status.has_value());
    CHECK(wrong.error.find("wrong type") != std::string::npos);
}

TEST_CASE("status: invalid UTF-8 in any text field is written as U+FFFD, never thrown") {
    azops::OpsStatus s;
    s.detail = "bad \xff byte";
    s.log_tail = {"\xc3"};
    std::string text;
    CHECK_NOTHROW(text = azops::to_json_text(s));
    CHECK(text.find("bad \xEF\xBF\xBD byte") != std::string::npos);
    CHECK(azops::parse_status(text).status.has_value());
}

TEST_CASE("iso8601_utc: UTC with a Z suffix") {
    using namespace std::chrono;
    const system_clock::time_point t = system_clock::time_point{seconds{1796000000}};
    CHECK(azops::iso8601_utc(t) == "2026-11-30T00:53:20Z");
}
