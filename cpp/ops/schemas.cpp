// Every wattwise op schema, in one place. CPU kernels live beside their pillar in cpp/ops/<pillar>;
// fake (meta) kernels and autograd formulas are registered from Python.
#include <torch/library.h>

TORCH_LIBRARY(wattwise, m) {
  // quant: weight-only int8 (per output channel) and int4 (grouped), fp32 activations.
  m.def("int8_weight_only_quantize(Tensor weight) -> (Tensor qweight, Tensor scales)",
        {at::Tag::pt2_compliant_tag});
  m.def("int8_weight_only_dequantize(Tensor qweight, Tensor scales) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "int8_weight_only_linear(Tensor input, Tensor qweight, Tensor scales, Tensor? bias) -> "
      "Tensor",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "int4_weight_only_quantize(Tensor weight, int group_size) -> (Tensor qweight, Tensor "
      "scales)",
      {at::Tag::pt2_compliant_tag});
  m.def("int4_weight_only_dequantize(Tensor qweight, Tensor scales, int group_size) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "int4_weight_only_linear(Tensor input, Tensor qweight, Tensor scales, int group_size, "
      "Tensor? bias) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  // quant: int8 activations x int8 weights (dynamic per token, or static from calibration),
  // and fp16/bf16 weight storage with fp32 compute.
  m.def("int8_dynamic_linear(Tensor input, Tensor qweight, Tensor scales, Tensor? bias) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "int8_static_linear(Tensor input, Tensor qweight, Tensor scales, Tensor wsum, float "
      "input_scale, int input_zero_point, int quant_min, int quant_max, Tensor? bias) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  m.def("int8_row_sums(Tensor qweight) -> Tensor", {at::Tag::pt2_compliant_tag});
  m.def("half_weight_linear(Tensor input, Tensor weight, Tensor? bias) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  // exit: one stage of the early-exit loop. Exiting rows are written into out/exit_index at
  // their batch positions; returns the continuing rows, their positions and patience state.
  m.def(
      "exit_step(Tensor logits, Tensor positions, Tensor(a!) out, Tensor(b!) exit_index, int "
      "stage, int criterion, float threshold, float temperature, Tensor? prev_pred, Tensor? "
      "prev_streak) -> (Tensor cont_rows, Tensor cont_positions, Tensor next_pred, Tensor "
      "next_streak)");
  // prune: magnitude selection over many tensors (threshold as |w| bit pattern + ties) and
  // sparse Linear (CSR with uint16 columns stored as int16; N:M values + uint8 indices).
  m.def("prune_kth_magnitude(Tensor[] tensors, int k) -> (int threshold_bits, int ties)");
  m.def(
      "prune_magnitude_mask(Tensor weight, int threshold_bits, int ties) -> (Tensor keep, int "
      "ties_left, int pruned)");
  m.def(
      "prune_magnitude_zero_(Tensor(a!) weight, int threshold_bits, int ties) -> (int ties_left, "
      "int pruned)");
  m.def(
      "sparse_csr_linear(Tensor input, Tensor row_ptr, Tensor col, Tensor values, int "
      "in_features, Tensor? bias) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "sparse_nm_linear(Tensor input, Tensor values, Tensor idx, int n, int m, Tensor? bias) -> "
      "Tensor",
      {at::Tag::pt2_compliant_tag});
}
