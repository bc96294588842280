// azops/status.hpp — the status of one task, and its JSON form (`azure_ops_status.json`, schema
// `azops.status/1`).
//
// Owns: azops::OpsStatus with every field of the status-file table in DESIGN.md (plus the additions
// listed in the README), its conversion to and from JSON, and ISO-8601 UTC time formatting.
// Thread-safety: plain values; no shared state. Errors: `to_json_text` never throws on bad text
// (invalid UTF-8 becomes U+FFFD); `status_from_json` throws nlohmann::json::exception on a document
// whose fields have the wrong types, and `parse_status` reports instead of throwing.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace azops {

inline constexpr std::string_view status_schema = "azops.status/1";

// One operation (or phase) the task went through, for the page's timeline.
struct TimelineEntry {
    std::string name;
    std::string state = "running";  // running, succeeded, failed, cancelled
    std::string started_at;
    std::optional<std::string> ended_at;
    double duration_seconds = 0.0;

};

struct OpsStatus {
    // Fields of the original specification.
    std::string operation = "idle";
    std::string phase;
    int step = 0;
    int total_steps = 0;
    double progress_pct = 0.0;
    std::vector<std::string> log_tail;
    std::string started_at;
    double elapsed_seconds = 0.0;
    std::optional<double> eta_seconds;
    std::optional<double> cost_usd = 0.0;         // null only when the rate is unknown
    std::optional<double> hourly_rate_usd = 0.0;  // null when the rate is unknown
    std::optional<std::string> vm_ip;
    std::optional<std::string> vm_state;
    std::optional<std::string> vnc_url;
    std::optional<std::string> error;
    // Additions of DESIGN.md.
    std::string schema{status_schema};
    std::string task;
    std::string state = "running";  // running, succeeded, failed, cancelled
    std::string detail;
    std::string updated_at;
    std::optional<double> projected_cost_usd;
    std::string eta_source = "none";  // history, progress, blend, none
    std::optional<std::string> vm_name;
    std::optional<std::string> vm_size;
    std::optional<std::string> region;
    std::vector<TimelineEntry> timeline;
    bool cancellable = false;
    std::optional<double> stalled_seconds;
    std::string status_file;
    // Additions of this library (README, "Status file").
    std::optional<double> eta_low_seconds;
    std::optional<double> eta_high_seconds;
    std::string rate_source;
    bool rate_known = true;
    bool billing_assumed = false;
    std::optional<double> stalled_cost_usd;
    std::optional<std::string> idle_deallocate_at;
    std::optional<std::string> notice;
    std::optional<int> tasks_succeeded;  // benchmark tasks that passed so far (null: not a benchmark)
    std::optional<int> tasks_failed;     // benchmark tasks that failed so far
    bool log_partial = false;  // the last `log_tail` line has not ended yet: it is still being redrawn
};

// "2026-11-29T03:38:45Z": ISO-8601, UTC, whole seconds.
inline std::string iso8601_utc(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(
        std::chrono::time_point_cast<std::chrono::seconds>(t));
    std::tm utc{};
    gmtime_r(&secs, &utc);
    std::array<char, 32> buf{};
    const std::size_t length = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
    return {buf.data(), length};
}

namespace detail {

template <typename T>
void put_optional(nlohmann::json& j, const char* key, const std::optional<T>& value) {
    j[key] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

template <typename T>
void get_optional(const nlohmann::json& j, const char* key, std::optional<T>& value) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        value.reset();
    } else {
        value = it->template get<T>();
    }
}

template <typename T>
void get_if_present(const nlohmann::json& j, const char* key, T& value) {
    const auto it = j.find(key);
    if (it != j.end() && !it->is_null()) value = it->template get<T>();
}

}  // namespace detail

inline void to_json(nlohmann::json& j, const TimelineEntry& e) {
    j = nlohmann::json{{"name", e.name}, {"state", e.state}, {"started_at", e.started_at}};
    detail::put_optional(j, "ended_at", e.ended_at);
    j["duration_seconds"] = e.duration_seconds;
}

inline void from_json(const nlohmann::json& j, TimelineEntry& e) {
    detail::get_if_present(j, "name", e.name);
    detail::get_if_present(j, "state", e.state);
    detail::get_if_present(j, "started_at", e.started_at);
    detail::get_optional(j, "ended_at", e.ended_at);
    detail::get_if_present(j, "duration_seconds", e.duration_seconds);
}

inline void to_json(nlohmann::json& j, const OpsStatus& s) {
    using detail::put_optional;
    j = nlohmann::json::object();
    j["operation"] = s.operation;
    j["phase"] = s.phase;
    j["step"] = s.step;
    j["total_steps"] = s.total_steps;
    j["progress_pct"] = s.progress_pct;
    j["log_tail"] = s.log_tail;
    j["started_at"] = s.started_at;
    j["elapsed_seconds"] = s.elapsed_seconds;
    put_optional(j, "eta_seconds", s.eta_seconds);
    put_optional(j, "cost_usd", s.cost_usd);
    put_optional(j, "hourly_rate_usd", s.hourly_rate_usd);
    put_optional(j, "vm_ip", s.vm_ip);
    put_optional(j, "vm_state", s.vm_state);
    put_optional(j, "vnc_url", s.vnc_url);
    put_optional(j, "error", s.error);
    j["schema"] = s.schema;
    j["task"] = s.task;
    j["state"] = s.state;
    j["detail"] = s.detail;
    j["updated_at"] = s.updated_at;
    put_optional(j, "projected_cost_usd", s.projected_cost_usd);
    j["eta_source"] = s.eta_source;
    put_optional(j, "vm_name", s.vm_name);
    put_optional(j, "vm_size", s.vm_size);
    put_optional(j, "region", s.region);
    j["timeline"] = s.timeline;
    j["cancellable"] = s.cancellable;
    put_optional(j, "stalled_seconds", s.stalled_seconds);
    j["status_file"] = s.status_file;
    put_optional(j, "eta_low_seconds", s.eta_low_seconds);
    put_optional(j, "eta_high_seconds", s.eta_high_seconds);
    j["rate_source"] = s.rate_source;
    j["rate_known"] = s.rate_known;
    j["billing_assumed"] = s.billing_assumed;
    put_optional(j, "stalled_cost_usd", s.stalled_cost_usd);
    put_optional(j, "idle_deallocate_at", s.idle_deallocate_at);
    put_optional(j, "notice", s.notice);
    put_optional(j, "tasks_succeeded", s.tasks_succeeded);
    put_optional(j, "tasks_failed", s.tasks_failed);
    j["log_partial"] = s.log_partial;
}

// Reads a status document; absent fields keep their defaults, so documents written by older
// versions (or by the original tooling, which had only the first fifteen fields) still load.
inline void from_json(const nlohmann::json& j, OpsStatus& s) {
    using detail::get_if_present;
    using detail::get_optional;
    get_if_present(j, "operation", s.operation);
    get_if_present(j, "phase", s.phase);
    get_if_present(j, "step", s.step);
    get_if_present(j, "total_steps", s.total_steps);
    get_if_present(j, "progress_pct", s.progress_pct);
    get_if_present(j, "log_tail", s.log_tail);
    get_if_present(j, "started_at", s.started_at);
    get_if_present(j, "elapsed_seconds", s.elapsed_seconds);
    get_optional(j, "eta_seconds", s.eta_seconds);
    get_optional(j, "cost_usd", s.cost_usd);
    get_optional(j, "hourly_rate_usd", s.hourly_rate_usd);
    get_optional(j, "vm_ip", s.vm_ip);
    get_optional(j, "vm_state", s.vm_state);
    get_optional(j, "vnc_url", s.vnc_url);
    get_optional(j, "error", s.error);
    get_if_present(j, "schema", s.schema);
    get_if_present(j, "task", s.task);
    get_if_present(j, "state", s.state);
    get_if_present(j, "detail", s.detail);
    get_if_present(j, "updated_at", s.updated_at);
    get_optional(j, "projected_cost_usd", s.projected_cost_usd);
    get_if_present(j, "eta_source", s.eta_source);
    get_optional(j, "vm_name", s.vm_name);
    get_optional(j, "vm_size", s.vm_size);
    get_optional(j, "region", s.region);
    get_if_present(j, "timeline", s.timeline);
    get_if_present(j, "cancellable", s.cancellable);
    get_optional(j, "stalled_seconds", s.stalled_seconds);
    get_if_present(j, "status_file", s.status_file);
    get_optional(j, "eta_low_seconds", s.eta_low_seconds);
    get_optional(j, "eta_high_seconds", s.eta_high_seconds);
    get_if_present(j, "rate_source", s.rate_source);
    get_if_present(j, "rate_known", s.rate_known);
    get_if_present(j, "billing_assumed", s.billing_assumed);
    get_optional(j, "stalled_cost_usd", s.stalled_cost_usd);
    get_optional(j, "idle_deallocate_at", s.idle_deallocate_at);
    get_optional(j, "notice", s.notice);
    get_optional(j, "tasks_succeeded", s.tasks_succeeded);
    get_optional(j, "tasks_failed", s.tasks_failed);
    get_if_present(j, "log_partial", s.log_partial);
}

// Serialises without ever throwing on text: invalid UTF-8 becomes U+FFFD rather than an exception
// in the middle of a half-written document.
inline std::string to_json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline std::string to_json_text(const OpsStatus& s, int indent = -1) {
    return to_json_text(nlohmann::json(s), indent);
}

// The outcome of reading a status document: the status, or why there is none.
struct ParsedStatus {
    std::optional<OpsStatus> status;
    std::string error;
};

inline ParsedStatus parse_status(std::string_view text) {
    const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return {std::nullopt, "not valid JSON"};
    if (!j.is_object()) return {std::nullopt, "not a JSON object"};
    try {
        return {j.get<OpsStatus>(), {}};
    } catch (const nlohmann::json::exception& e) {
        return {std::nullopt, std::string("a field has the wrong type: ") + e.what()};
    }
}

}  // namespace azops
