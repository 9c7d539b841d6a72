// xnnpack_bench_runner: the raw C++ baseline of the benchmarks.
//
// Reads a graph file written by bench/lib/graph-file.ts (the lowered Graph IR
// plus a float32 weights blob), builds it with the addon's own lowering
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
  if (s == "inf" || s == "Infinity") return INFINITY;
  if (s == "-inf" || s == "-Infinity") return -INFINITY;
  size_t used = 0;
  double v = std::stod(s, &used);
  if (used != s.size()) Fail("bad number '" + s + "'");
  return v;
}

std::vector<double> ParseList(const std::string& s) {
  std::vector<double> out;
  if (s.empty()) return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(ParseNumber(item));
  return out;
}

uint32_t U32(double v, const std::string& what) {
  if (!(v >= 0) || v > 4294967295.0 || v != std::floor(v)) Fail("bad " + what);
  return static_cast<uint32_t>(v);
}

struct Blob {
  std::vector<float> data;

  FloatBuffer Slice(const std::string& ref, const std::string& what) const {
    size_t colon = ref.find(':');
    if (colon == std::string::npos) Fail("bad weights reference for " + what);
    double off = ParseNumber(ref.substr(0, colon));
    double len = ParseNumber(ref.substr(colon + 1));
    if (off < 0) return nullptr;
    if (off + len > static_cast<double>(data.size())) Fail(what + " lies outside the weights blob");
    auto begin = data.begin() + static_cast<size_t>(off);
    return std::make_shared<std::vector<float>>(begin, begin + static_cast<size_t>(len));
  }
};

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::vector<char> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Fail("cannot read " + path);
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

GraphData ReadGraph(const std::string& path) {
  std::ifstream f(path);
  if (!f) Fail("cannot read " + path);
  GraphData g;
  Blob blob;
  std::string line;
  int line_no = 0;
  while (std::getline(f, line)) {
    line_no++;
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string kind;
    ss >> kind;
    auto where = [&]() { return path + ":" + std::to_string(line_no); };
    if (kind == "MNXG") {
      int version = 0;
      ss >> version;
      if (version != 1) Fail(where() + ": unsupported graph file version");
    } else if (kind == "weights") {
      std::string name;
      ss >> name;
      std::vector<char> bytes = ReadFile(DirName(path) + "/" + name);
      blob.data.resize(bytes.size() / sizeof(float));
      std::memcpy(blob.data.data(), bytes.data(), blob.data.size() * sizeof(float));
    } else if (kind == "tensor") {
      double id, batched, rank;
      ss >> id >> batched >> rank;
      if (U32(id, "tensor id") != g.tensors.size()) Fail(where() + ": tensor ids must be dense");
      TensorRecord t;
      t.batched = batched != 0;
      for (uint32_t i = 0; i < U32(rank, "rank"); i++) {
        double d;
        ss >> d;
        t.shape.push_back(U32(d, "dimension"));
      }
      double off, len;
      ss >> off >> len;
      if (!ss) Fail(where() + ": truncated tensor line");
      if (off >= 0) {
        t.data = blob.Slice(std::to_string(static_cast<long long>(off)) + ":" +
                                std::to_string(static_cast<long long>(len)),
                            "tensor");
        g.weight_bytes += t.data->size() * sizeof(float);
      }
      g.tensors.push_back(std::move(t));
    } else if (kind == "input" || kind == "output") {
      double id;
      ss >> id;
      if (U32(id, kind) >= g.tensors.size()) Fail(where() + ": unknown tensor");
      (kind == "input" ? g.input : g.output) = static_cast<int64_t>(id);
    } else if (kind == "node") {
      std::string op;
      double out;
      ss >> op >> out;
      std::map<std::string, std::string> kv;
      std::string field;
      while (ss >> field) {
        size_t eq = field.find('=');
        if (eq == std::string::npos) Fail(where() + ": bad field " + field);
        kv[field.substr(0, eq)] = field.substr(eq + 1);
      }
      auto get = [&](const char* key) -> const std::string& {
        auto it = kv.find(key);
        if (it == kv.end()) Fail(where() + ": missing " + key);
        return it->second;
      };
      auto num = [&](const char* key) { return ParseNumber(get(key)); };
      auto u32 = [&](const char* key) { return U32(num(key), key); };
      auto tensor = [&](const char* key) {
        uint32_t id = u32(key);
        if (id >= g.tensors.size()) Fail(where() + ": unknown tensor " + key);
        return id;
      };
      auto pair = [&](const char* key, uint32_t* dst, size_t n) {
        std::vector<double> v = ParseList(get(key));
        if (v.size() != n) Fail(where() + ": bad " + key);
        for (size_t i = 0; i < n; i++) dst[i] = U32(v[i], key);
      };
      auto sizes = [&](const char* key) {
        std::vector<size_t> out;
        for (double d : ParseList(get(key))) out.push_back(U32(d, key));
        return out;
      };
      auto weights = [&](const char* key) {
        FloatBuffer b = blob.Slice(get(key), key);
        if (b) g.weight_bytes += b->size() * sizeof(float);
        return b;
      };
      NodeRecord n;
      n.output = U32(out, "output");
      if (n.output >= g.tensors.size()) Fail(where() + ": unknown output tensor");
      if (kv.count("outputMin"))
        n.output_min = static_cast<float>(num("outputMin"));
      else
        n.output_min = -INFINITY;
      if (kv.count("outputMax"))
        n.output_max = static_cast<float>(num("outputMax"));
      else
        n.output_max = INFINITY;
      if (op == "conv2d" || op == "depthwiseConv2d") {
        n.op = op == "conv2d" ? Op::kConv2d : Op::kDepthwiseConv2d;
        n.input = tensor("input");
        n.filter = weights("filter");
        n.bias = weights("bias");
        pair("kernel", n.kernel, 2);
        pair("stride", n.stride, 2);
        pair("dilation", n.dilation, 2);
        pair("padding", n.padding, 4);
        if (n.op == Op::kConv2d) {
          n.groups = u32("groups");
          n.group_input_channels = u32("groupInputChannels");
          n.group_output_channels = u32("groupOutputChannels");
        } else {
          n.input_channels = u32("inputChannels");
          n.depth_multiplier = u32("depthMultiplier");
        }
      } else if (op == "add" || op == "multiply") {
        n.op = op == "add" ? Op::kAdd : Op::kMultiply;
        n.input = tensor("a");
        n.input2 = tensor("b");
      } else if (op == "clamp") {
        n.op = Op::kClamp;
        n.input = tensor("input");
        n.output_min = static_cast<float>(num("min"));
        n.output_max = static_cast<float>(num("max"));
      } else if (op == "hardswish" || op == "sigmoid" || op == "softmax" ||
                 op == "globalAveragePool") {
        n.op = op == "hardswish" ? Op::kHardswish
               : op == "sigmoid" ? Op::kSigmoid
               : op == "softmax" ? Op::kSoftmax
                                 : Op::kGlobalAveragePool;
        n.input = tensor("input");
      } else if (op == "averagePool2d") {
        n.op = Op::kAveragePool2d;
        n.input = tensor("input");
        pair("pool", n.kernel, 2);
        pair("stride", n.stride, 2);
      } else if (op == "fullyConnected") {
        n.op = Op::kFullyConnected;
        n.input = tensor("input");
        n.filter = weights("weights");
        n.bias = weights("bias");
        n.input_channels = u32("inputChannels");
        n.output_channels = u32("outputChannels");
      } else if (op == "pad") {
        n.op = Op::kPad;
        n.input = tensor("input");
        n.pre_padding = sizes("prePadding");
        n.post_padding = sizes("postPadding");
        n.pad_value = static_cast<float>(num("value"));
      } else if (op == "reshape") {
        n.op = Op::kReshape;
        n.input = tensor("input");
        n.new_shape = sizes("shape");
      } else {
        Fail(where() + ": unknown op " + op);
      }
      g.nodes.push_back(std::move(n));
    } else {
      Fail(where() + ": unknown record " + kind);
    }
  }
  if (g.input < 0 || g.output < 0) Fail(path + ": no input or output");
  return g;
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
              ",\"median\":" + JsonNumber(Median(op_us[k])) + "}";
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
