// xnnpack_bench_runner: the raw C++ baseline of the benchmarks.
//
// Reads a serialized graph (lib/graph-format.ts, written by
// bench/lib/graph-file.ts) with the addon's own parser (native/format.cc), builds it with the addon's own lowering
// (native/subgraph.cc: the same xnn_define_* calls, flags and thread-pool
// policy), and times xnn_invoke_runtime alone with std::chrono::steady_clock.
//
//   xnnpack_bench_runner --graph FILE [--input FILE] [--threads N] [--batch N]
//                        [--runs N] [--warmup N] [--times] [--profile] [--no-output]
//                        [--serve]
//
// Prints one JSON line: {"median_ms", "load_ms", "times_ms"?, "output"?,
// "profile_us"?, "xnnpack", "threads", "batch"} or {"error"} (exit status 1).
//
// With --serve: builds the runtime, runs the warm-up, prints a ready line
// {"ready":true,"load_ms",...} (load = read graph + define subgraph + pack
// weights + set up), then answers one JSON line per command on stdin:
//   output     one invocation, {"output":[...]}
//   time N     N timed invocations, {"times_ms":[...],"median_ms"}
//   rss        {"peak_rss_mb"}
//   quit       exit (also at the end of the input)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../native/format.h"
#include "../../native/ir.h"
#include "../../native/subgraph.h"

using namespace mobilenet;

namespace {

[[noreturn]] void Fail(const std::string& message) { throw std::runtime_error(message); }

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

double ParseNumber(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    Fail("bad number '" + s + "'");
  }
  if (used != s.size()) Fail("bad number '" + s + "'");
  return v;
}

uint32_t U32(double v, const std::string& what) {
  if (!(v >= 0) || v > 4294967295.0 || v != std::floor(v)) Fail("bad " + what);
  return static_cast<uint32_t>(v);
}

std::vector<char> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Fail("cannot read " + path);
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The serialized graph (lib/graph-format.ts), read by the addon's own parser.
GraphData ReadGraph(const std::string& path) {
  std::vector<char> bytes = ReadFile(path);
  try {
    return ParseGraph(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  } catch (const GraphFormatError& e) {
    Fail(path + ": " + e.what());
  }
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Main(int argc, char** argv) {
  std::string graph_file, input_file;
  uint32_t threads = 1, batch = 1, runs = 10, warmup = 1;
  bool times = false, profile = false, output = true, serve = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail("missing value for " + a);
      return argv[++i];
    };
    if (a == "--graph")
      graph_file = value();
    else if (a == "--input")
      input_file = value();
    else if (a == "--threads")
      threads = U32(ParseNumber(value()), "--threads");
    else if (a == "--batch")
      batch = U32(ParseNumber(value()), "--batch");
    else if (a == "--runs")
      runs = U32(ParseNumber(value()), "--runs");
    else if (a == "--warmup")
      warmup = U32(ParseNumber(value()), "--warmup");
    else if (a == "--times")
      times = true;
    else if (a == "--profile")
      profile = true;
    else if (a == "--no-output")
      output = false;
    else if (a == "--serve")
      serve = true;
    else
      Fail("unknown argument " + a);
  }
  if (graph_file.empty()) Fail("--graph is required");
  if (threads == 0 || batch == 0) Fail("--threads and --batch must be positive");

  const auto load_start = std::chrono::steady_clock::now();
  xnn_status init = xnn_initialize(nullptr);
  if (init != xnn_status_success) Fail("xnn_initialize failed (" + StatusName(init) + ")");
  GraphData g = ReadGraph(graph_file);

  uint32_t flags = 0;
#ifdef XNN_FLAG_BASIC_PROFILING
  if (profile) flags |= XNN_FLAG_BASIC_PROFILING;
#else
  if (profile) Fail("this XNNPACK has no XNN_FLAG_BASIC_PROFILING");
#endif
  CompileError error;
  std::unique_ptr<CompiledModel> m = BuildModel(g, batch, threads, flags, &error);
  if (!m) Fail(error.message + " (" + StatusName(error.status) + ")");

  // Input: the whole batch, or one sample repeated; default a fixed ramp.
  const size_t n_in = m->input->size();
  if (!input_file.empty()) {
    std::vector<char> bytes = ReadFile(input_file);
    size_t count = bytes.size() / sizeof(float);
    if (count == 0 || n_in % count != 0) {
      Fail("input file has " + std::to_string(count) + " floats; expected " + std::to_string(n_in) +
           " or " + std::to_string(n_in / batch));
    }
    for (size_t at = 0; at < n_in; at += count)
      std::memcpy(m->input->data() + at, bytes.data(), count * sizeof(float));
  } else {
    for (size_t i = 0; i < n_in; i++)
      m->input->data()[i] = static_cast<float>(i % 255) / 127.5f - 1.0f;
  }

  const double load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
          .count();
  auto invoke = [&]() {
    xnn_status s = xnn_invoke_runtime(m->runtime.get());
    if (s != xnn_status_success) Fail("xnn_invoke_runtime failed (" + StatusName(s) + ")");
  };
  auto output_json = [&]() {
    std::string json = "\"output\":[";
    for (size_t i = 0; i < m->output->size(); i++)
      json += (i ? "," : "") + JsonNumber(m->output->data()[i]);
    return json + "]";
  };
#if defined(MOBILENET_XNNPACK_VENDORED)
  const std::string xnnpack = std::string("vendored ") + MOBILENET_XNNPACK_COMMIT;
#else
  const std::string xnnpack = std::string("system ") + MOBILENET_XNNPACK_VERSION;
#endif
  const std::string about =
      ",\"load_ms\":" + JsonNumber(load_ms) + ",\"xnnpack\":" + JsonString(xnnpack) +
      ",\"threads\":" + std::to_string(threads) + ",\"batch\":" + std::to_string(batch) +
      ",\"weight_bytes\":" + std::to_string(g.weight_bytes);
  for (uint32_t i = 0; i < warmup; i++) invoke();

  if (serve) {
    std::printf("{\"ready\":true%s}\n", about.c_str());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
      std::stringstream ss(line);
      std::string cmd;
      ss >> cmd;
      if (cmd.empty()) continue;
      if (cmd == "quit") break;
      try {
        if (cmd == "output") {
          invoke();
          std::printf("{%s}\n", output_json().c_str());
        } else if (cmd == "time") {
          double n = 0;
          ss >> n;
          uint32_t count = U32(n, "run count");
          if (count == 0) Fail("time needs a positive run count");
          std::vector<double> t;
          for (uint32_t i = 0; i < count; i++) {
            auto t0 = std::chrono::steady_clock::now();
            invoke();
            auto t1 = std::chrono::steady_clock::now();
            t.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          }
          std::string json = "{\"times_ms\":[";
          for (size_t i = 0; i < t.size(); i++) json += (i ? "," : "") + JsonNumber(t[i]);
          json += "],\"median_ms\":" + JsonNumber(Median(t)) + "}";
          std::puts(json.c_str());
        } else if (cmd == "rss") {
          struct rusage usage;
          getrusage(RUSAGE_SELF, &usage);
          std::printf("{\"peak_rss_mb\":%s}\n", JsonNumber(usage.ru_maxrss / 1024.0).c_str());
        } else {
          Fail("unknown command " + cmd);
        }
      } catch (const std::exception& e) {
        std::printf("{\"error\":%s}\n", JsonString(e.what()).c_str());
      }
      std::fflush(stdout);
    }
    return 0;
  }
  std::vector<double> ms;
  std::vector<std::string> op_names;
  std::vector<std::vector<double>> op_us;
  for (uint32_t i = 0; i < runs; i++) {
    auto t0 = std::chrono::steady_clock::now();
    xnn_status s = xnn_invoke_runtime(m->runtime.get());
    auto t1 = std::chrono::steady_clock::now();
    if (s != xnn_status_success) Fail("xnn_invoke_runtime failed (" + StatusName(s) + ")");
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
#ifdef XNN_FLAG_BASIC_PROFILING
    if (profile) {
      size_t count = 0, size = 0;
      if (xnn_get_runtime_profiling_info(m->runtime.get(), xnn_profile_info_num_operators,
                                         sizeof(count), &count, &size) != xnn_status_success) {
        Fail("xnn_get_runtime_profiling_info failed");
      }
      xnn_get_runtime_profiling_info(m->runtime.get(), xnn_profile_info_operator_name, 0, nullptr,
                                     &size);
      std::vector<char> names(size);
      if (xnn_get_runtime_profiling_info(m->runtime.get(), xnn_profile_info_operator_name,
                                         names.size(), names.data(), &size) != xnn_status_success) {
        Fail("xnn_get_runtime_profiling_info (names) failed");
      }
      std::vector<uint64_t> timing(count);
      if (xnn_get_runtime_profiling_info(m->runtime.get(), xnn_profile_info_operator_timing,
                                         timing.size() * sizeof(uint64_t), timing.data(),
                                         &size) != xnn_status_success) {
        Fail("xnn_get_runtime_profiling_info (timing) failed");
      }
      if (op_names.empty()) {
        for (size_t at = 0, k = 0; k < count && at < names.size(); k++) {
          op_names.emplace_back(names.data() + at);
          at += op_names.back().size() + 1;
        }
        op_us.resize(op_names.size());
      }
      for (size_t k = 0; k < op_us.size() && k < timing.size(); k++)
        op_us[k].push_back(static_cast<double>(timing[k]));
    }
#endif
  }

  std::string json = "{\"median_ms\":" + JsonNumber(Median(ms)) + about;
  if (times) {
    json += ",\"times_ms\":[";
    for (size_t i = 0; i < ms.size(); i++) json += (i ? "," : "") + JsonNumber(ms[i]);
    json += "]";
  }
  if (profile) {
    json += ",\"profile_us\":[";
    for (size_t k = 0; k < op_names.size(); k++) {
      json += std::string(k ? "," : "") + "{\"op\":" + JsonString(op_names[k]) +
              ",\"median\":" + JsonNumber(Median(op_us[k])) +
              ",\"min\":" + JsonNumber(*std::min_element(op_us[k].begin(), op_us[k].end())) + "}";
    }
    json += "]";
  }
  if (output) json += "," + output_json();
  json += "}";
  std::puts(json.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xnnpack_bench_runner: %s\n", e.what());
    std::printf("{\"error\":%s}\n", JsonString(e.what()).c_str());
    return 1;
  }
}
