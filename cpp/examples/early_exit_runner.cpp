// Runs an exported early-exit model (wattwise.early_exit.export) with no Python: TorchScript
// stages and heads from LibTorch, the exit decision and compaction from wattwise's core.
//
//   early_exit_runner MODEL_DIR INPUT_FILE OUTPUT_FILE
//
// INPUT_FILE holds x and then the per-sample extra tensors (wattwise.early_exit.save_tensors);
// OUTPUT_FILE receives the logits [batch, classes] and exit indices [batch] (load_tensors).
#include <torch/script.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "wattwise/exit/decision.h"

namespace {

constexpr char kMagic[8] = {'W', 'W', 'T', 'E', 'N', 'S', 'O', 'R'};

struct Manifest {
  int64_t exits = 0;
  int64_t criterion = 0;
  std::vector<double> thresholds, temperatures;
  int64_t extras = 0;
};

double parse_double(const std::string& s) {
  if (s == "inf") return INFINITY;
  if (s == "-inf") return -INFINITY;
  size_t used = 0;
  const double v = std::stod(s, &used);
  if (used != s.size()) throw std::invalid_argument("not a number: " + s);
  return v;
}

Manifest read_manifest(const std::string& dir) {
  std::ifstream f(dir + "/early_exit.txt");
  if (!f) throw std::runtime_error("cannot open " + dir + "/early_exit.txt");
  Manifest m;
  std::string line;
  bool header = false;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string key, tok;
    in >> key;
    if (key == "wattwise-early-exit") {
      in >> tok;
      if (tok != "1") throw std::runtime_error("unsupported manifest version " + tok);
      header = true;
    } else if (key == "exits") {
      in >> m.exits;
    } else if (key == "criterion") {
      in >> m.criterion;
    } else if (key == "extras") {
      in >> m.extras;
    } else if (key == "thresholds" || key == "temperatures") {
      auto& v = key == "thresholds" ? m.thresholds : m.temperatures;
      while (in >> tok) v.push_back(parse_double(tok));
    }
  }
  if (!header) throw std::runtime_error(dir + "/early_exit.txt is not an early-exit manifest");
  if (m.exits < 1) throw std::runtime_error("manifest: exits must be >= 1");
  if (static_cast<int64_t>(m.thresholds.size()) != m.exits - 1 ||
      static_cast<int64_t>(m.temperatures.size()) != m.exits) {
    throw std::runtime_error("manifest: need " + std::to_string(m.exits - 1) + " thresholds and " +
                             std::to_string(m.exits) + " temperatures, got " +
                             std::to_string(m.thresholds.size()) + " and " +
                             std::to_string(m.temperatures.size()));
  }
  return m;
}

template <typename T>
T read_pod(std::ifstream& f) {
  T v{};
  f.read(reinterpret_cast<char*>(&v), sizeof(T));
  if (!f) throw std::runtime_error("input file is truncated");
  return v;
}

std::vector<torch::Tensor> read_tensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  char magic[8];
  f.read(magic, 8);
  if (!f || std::memcmp(magic, kMagic, 8) != 0) {
    throw std::runtime_error(path + " is not a wattwise tensor file");
  }
  const int64_t count = read_pod<int64_t>(f);
  if (count < 0 || count > 1024) throw std::runtime_error("bad tensor count in " + path);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t code = read_pod<int64_t>(f), ndim = read_pod<int64_t>(f);
    if (ndim < 0 || ndim > 16) throw std::runtime_error("bad ndim in " + path);
    std::vector<int64_t> shape(ndim);
    for (auto& d : shape) {
      d = read_pod<int64_t>(f);
      if (d < 0) throw std::runtime_error("negative dimension in " + path);
    }
    const auto dtype = code == 0   ? torch::kFloat
                       : code == 1 ? torch::kLong
                       : code == 2 ? torch::kBool
                                   : throw std::runtime_error("unknown dtype code in " + path);
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    f.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    if (!f && t.nbytes() > 0) throw std::runtime_error(path + " is truncated");
    out.push_back(t);
  }
  return out;
}

void write_tensors(const std::string& path, const std::vector<torch::Tensor>& ts) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + path);
  f.write(kMagic, 8);
  const int64_t count = static_cast<int64_t>(ts.size());
  f.write(reinterpret_cast<const char*>(&count), 8);
  for (const auto& t0 : ts) {
    const torch::Tensor t = t0.contiguous();
    const int64_t code = t.scalar_type() == torch::kFloat ? 0 : 1, ndim = t.dim();
    f.write(reinterpret_cast<const char*>(&code), 8);
    f.write(reinterpret_cast<const char*>(&ndim), 8);
    for (const int64_t d : t.sizes()) f.write(reinterpret_cast<const char*>(&d), 8);
    f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  }
}

int run(const std::string& dir, const std::string& input, const std::string& output) {
  const Manifest m = read_manifest(dir);
  std::vector<torch::jit::Module> stages, heads;
  for (int64_t k = 0; k < m.exits; ++k) {
    stages.push_back(torch::jit::load(dir + "/stage_" + std::to_string(k) + ".pt"));
    heads.push_back(torch::jit::load(dir + "/head_" + std::to_string(k) + ".pt"));
    stages.back().eval();
    heads.back().eval();
  }
  std::vector<torch::Tensor> inputs = read_tensors(input);
  if (static_cast<int64_t>(inputs.size()) != 1 + m.extras) {
    throw std::runtime_error("the model takes x and " + std::to_string(m.extras) +
                             " extra tensors; " + input + " holds " +
                             std::to_string(inputs.size()) + " tensors");
  }
  torch::Tensor h = inputs[0];
  std::vector<torch::Tensor> extra(inputs.begin() + 1, inputs.end());
  const int64_t batch = h.dim() >= 1 ? h.size(0) : 0;
  for (const auto& e : extra) {
    if (e.dim() < 1 || e.size(0) != batch) {
      throw std::runtime_error("every extra tensor needs the batch size first");
    }
  }

  torch::NoGradGuard no_grad;
  torch::Tensor positions = torch::arange(batch, torch::kLong);
  torch::Tensor exit_index = torch::full({batch}, -1, torch::kLong);
  torch::Tensor out, pred, streak;
  const auto criterion = wattwise::exit::criterion_from_int(m.criterion);
  for (int64_t k = 0; k < m.exits && positions.size(0) > 0; ++k) {
    std::vector<torch::jit::IValue> args{h};
    for (const auto& e : extra) args.emplace_back(e);
    h = stages[k].forward(args).toTensor();
    torch::Tensor logits = heads[k].forward({h}).toTensor();
    if (logits.dim() != 2) {
      std::ostringstream s;
      s << "head_" << k << " must return 2-D logits [batch, classes], got shape " << logits.sizes();
      throw std::runtime_error(s.str());
    }
    logits = logits.to(torch::kFloat).contiguous();
    const int64_t rows = logits.size(0), cols = logits.size(1);
    if (!out.defined()) out = torch::empty({batch, cols}, torch::kFloat);
    auto cont_rows = torch::empty({rows}, torch::kLong),
         cont_pos = torch::empty({rows}, torch::kLong);
    auto next_pred = torch::empty({rows}, torch::kLong),
         next_streak = torch::empty({rows}, torch::kLong);
    wattwise::exit::StepArgs a;
    a.logits = logits.const_data_ptr<float>();
    a.rows = rows;
    a.cols = cols;
    a.positions = positions.const_data_ptr<int64_t>();
    a.out_rows = batch;
    a.out = out.mutable_data_ptr<float>();
    a.exit_index = exit_index.mutable_data_ptr<int64_t>();
    a.stage = k;
    a.criterion = criterion;
    a.threshold = k + 1 < m.exits ? static_cast<float>(m.thresholds[k]) : -INFINITY;
    a.temperature = static_cast<float>(m.temperatures[k]);
    const bool patience = criterion == wattwise::exit::Criterion::kPatience;
    if (patience && pred.defined()) {
      a.prev_pred = pred.const_data_ptr<int64_t>();
      a.prev_streak = streak.const_data_ptr<int64_t>();
    }
    a.cont_rows = cont_rows.mutable_data_ptr<int64_t>();
    a.cont_positions = cont_pos.mutable_data_ptr<int64_t>();
    a.next_pred = next_pred.mutable_data_ptr<int64_t>();
    a.next_streak = next_streak.mutable_data_ptr<int64_t>();
    const int64_t n = wattwise::exit::exit_step(a);
    positions = cont_pos.narrow(0, 0, n);
    pred = next_pred.narrow(0, 0, n);
    streak = next_streak.narrow(0, 0, n);
    if (n > 0 && n < rows) {
      const torch::Tensor idx = cont_rows.narrow(0, 0, n);
      h = h.index_select(0, idx);
      for (auto& e : extra) e = e.index_select(0, idx);
    }
  }
  if (!out.defined()) out = torch::empty({0, 0}, torch::kFloat);
  write_tensors(output, {out, exit_index});
  std::vector<int64_t> hist(m.exits, 0);
  for (int64_t i = 0; i < batch; ++i) ++hist[exit_index[i].item<int64_t>()];
  std::cout << "samples " << batch << " exits";
  for (const int64_t c : hist) std::cout << ' ' << c;
  std::cout << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR INPUT_FILE OUTPUT_FILE\n";
    return 2;
  }
  try {
    return run(argv[1], argv[2], argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "early_exit_runner: error: " << e.what() << '\n';
    return 1;
  }
}
