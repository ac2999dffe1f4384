// CPU kernel of the early-exit step op: checks, then the torch-free decision and compaction.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <optional>
#include <stdexcept>
#include <tuple>

#include "../common.h"
#include "wattwise/exit/decision.h"

namespace wattwise::ops {
namespace {

void check_state(const char* op, const char* arg, const std::optional<at::Tensor>& t,
                 int64_t rows) {
  if (!t.has_value()) return;
  check_cpu(op, arg, *t);
  check_dtype(op, arg, *t, at::kLong);
  TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == rows, op, ": ", arg, " must have shape [", rows,
                    "] (one entry per row of logits), got ", t->sizes());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> exit_step(
    const at::Tensor& logits, const at::Tensor& positions, at::Tensor& out, at::Tensor& exit_index,
    int64_t stage, int64_t criterion, double threshold, double temperature,
    const std::optional<at::Tensor>& prev_pred, const std::optional<at::Tensor>& prev_streak) {
  const char* op = "exit_step";
  check_cpu(op, "logits", logits);
  check_dtype(op, "logits", logits, at::kFloat);
  TORCH_CHECK_VALUE(logits.dim() == 2, op,
                    ": an exit head must return 2-D logits [batch, classes], got shape ",
                    logits.sizes());
  const int64_t rows = logits.size(0), cols = logits.size(1);
  check_cpu(op, "positions", positions);
  check_dtype(op, "positions", positions, at::kLong);
  TORCH_CHECK_VALUE(positions.dim() == 1 && positions.size(0) == rows, op,
                    ": positions must have shape [", rows, "], got ", positions.sizes());
  check_cpu(op, "out", out);
  check_dtype(op, "out", out, at::kFloat);
  TORCH_CHECK_VALUE(out.dim() == 2 && out.size(1) == cols && out.is_contiguous(), op,
                    ": out must be a contiguous [batch, ", cols, "] tensor, got shape ",
                    out.sizes());
  check_cpu(op, "exit_index", exit_index);
  check_dtype(op, "exit_index", exit_index, at::kLong);
  TORCH_CHECK_VALUE(
      exit_index.dim() == 1 && exit_index.size(0) == out.size(0) && exit_index.is_contiguous(), op,
      ": exit_index must be a contiguous [", out.size(0), "] tensor, got shape ",
      exit_index.sizes());
  check_state(op, "prev_pred", prev_pred, rows);
  check_state(op, "prev_streak", prev_streak, rows);

  const at::Tensor x = logits.contiguous(), pos = positions.contiguous();
  const at::Tensor pp = prev_pred.has_value() ? prev_pred->contiguous() : at::Tensor();
  const at::Tensor ps = prev_streak.has_value() ? prev_streak->contiguous() : at::Tensor();
  const auto lopt = pos.options();
  at::Tensor cont_rows = at::empty({rows}, lopt), cont_pos = at::empty({rows}, lopt);
  at::Tensor next_pred = at::empty({rows}, lopt), next_streak = at::empty({rows}, lopt);

  exit::StepArgs a;
  a.logits = x.const_data_ptr<float>();
  a.rows = rows;
  a.cols = cols;
  a.positions = pos.const_data_ptr<int64_t>();
  a.out_rows = out.size(0);
  a.out = out.mutable_data_ptr<float>();
  a.exit_index = exit_index.mutable_data_ptr<int64_t>();
  a.stage = stage;
  a.threshold = static_cast<float>(threshold);
  a.temperature = static_cast<float>(temperature);
  a.prev_pred = pp.defined() ? pp.const_data_ptr<int64_t>() : nullptr;
  a.prev_streak = ps.defined() ? ps.const_data_ptr<int64_t>() : nullptr;
  a.cont_rows = cont_rows.mutable_data_ptr<int64_t>();
  a.cont_positions = cont_pos.mutable_data_ptr<int64_t>();
  a.next_pred = next_pred.mutable_data_ptr<int64_t>();
  a.next_streak = next_streak.mutable_data_ptr<int64_t>();
  int64_t n = 0;
  sync_num_threads();
  try {
    a.criterion = exit::criterion_from_int(criterion);
    n = exit::exit_step(a);
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, op, ": ", e.what(), " (stage ", stage, ")");
  }
  return {cont_rows.narrow(0, 0, n), cont_pos.narrow(0, 0, n), next_pred.narrow(0, 0, n),
          next_streak.narrow(0, 0, n)};
}

}  // namespace

TORCH_LIBRARY_IMPL(wattwise, CPU, m) { m.impl("exit_step", &exit_step); }

}  // namespace wattwise::ops
