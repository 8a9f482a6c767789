/* Bad input through the C API: every call must return the expected error status with a
 * message, leave its outputs empty, and never crash. Run by tests/c_programs.rs as
 *   bad_input PACKAGE CORRUPT_IMAGE_FILE
 * Prints one line per case; exits 1 if any case got something else. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vtde.h"

static int failures = 0;

/* Checks that `status` is `expected` and that vtde left a message. */
static void expect(const char *name, VtdeStatus status, VtdeStatus expected) {
  const char *message = vtde_last_error_message();
  int ok = status == expected && message != NULL && strlen(message) > 0;
  printf("%s %s status=%d message=%s\n", ok ? "ok" : "FAIL", name, (int)status,
         message ? message : "(null)");
  if (!ok) failures++;
}

static void expect_ok(const char *name, VtdeStatus status) {
  int ok = status == VTDE_STATUS_OK && strlen(vtde_last_error_message()) == 0;
  printf("%s %s status=%d\n", ok ? "ok" : "FAIL", name, (int)status);
  if (!ok) failures++;
}

static void expect_empty(const char *name, const VtdeMatrix *m) {
  int ok = m->data == NULL && m->rows == 0 && m->cols == 0;
  printf("%s %s-output-empty\n", ok ? "ok" : "FAIL", name);
  if (!ok) failures++;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s PACKAGE CORRUPT_IMAGE_FILE\n", argv[0]);
    return 2;
  }
  const char *package = argv[1];
  VtdeModel *model = NULL;
  VtdeMatrix out;

  /* Before any model is open: a library path that does not exist is refused. */
  VtdeOptions *options = vtde_options_new();
  expect_ok("ort-library-option",
            vtde_options_set_onnxruntime_library(options, "/nonexistent/libonnxruntime.so"));
  expect("open-with-missing-ort", vtde_model_open(package, options, &model),
         VTDE_STATUS_ONNX_RUNTIME);
  vtde_options_free(options);

  /* Options. */
  options = vtde_options_new();
  expect("options-null", vtde_options_set_threads(NULL, 2), VTDE_STATUS_INVALID_ARGUMENT);
  expect("provider-unknown", vtde_options_set_providers(options, "cpu,gpu"),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("provider-null", vtde_options_set_providers(options, NULL), VTDE_STATUS_INVALID_ARGUMENT);
  expect("precision-unknown", vtde_options_set_precision(options, "fp64"),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("batch-size-zero", vtde_options_set_batch_size(options, 0), VTDE_STATUS_INVALID_ARGUMENT);
  expect("library-null", vtde_options_set_onnxruntime_library(options, NULL),
         VTDE_STATUS_INVALID_ARGUMENT);
  vtde_options_free(options);
  vtde_options_free(NULL);

  /* Opening. */
  expect("open-null-dir", vtde_model_open(NULL, NULL, &model), VTDE_STATUS_INVALID_ARGUMENT);
  expect("open-null-out", vtde_model_open(package, NULL, NULL), VTDE_STATUS_INVALID_ARGUMENT);
  expect("open-missing-package", vtde_model_open("/nonexistent/vtde-package", NULL, &model),
         VTDE_STATUS_PACKAGE);
  if (model != NULL) {
    printf("FAIL open-missing-package-output-null\n");
    failures++;
  }
  expect("open-empty-dir", vtde_model_open("", NULL, &model), VTDE_STATUS_INVALID_ARGUMENT);

  /* A good model for the calls below. */
  VtdeStatus opened = vtde_model_open(package, NULL, &model);
  if (opened != VTDE_STATUS_OK) {
    fprintf(stderr, "cannot open %s: %s\n", package, vtde_last_error_message());
    return 1;
  }
  size_t dim = 0;
  expect("dim-null-model", vtde_model_embedding_dim(NULL, &dim), VTDE_STATUS_INVALID_ARGUMENT);
  expect("dim-null-out", vtde_model_embedding_dim(model, NULL), VTDE_STATUS_INVALID_ARGUMENT);

  /* Texts. */
  const char *texts[2] = {"a red circle", NULL};
  expect("texts-null-model", vtde_embed_texts(NULL, texts, 1, &out), VTDE_STATUS_INVALID_ARGUMENT);
  expect_empty("texts-null-model", &out);
  expect("texts-null-array", vtde_embed_texts(model, NULL, 2, &out), VTDE_STATUS_INVALID_ARGUMENT);
  expect("texts-null-entry", vtde_embed_texts(model, texts, 2, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect_empty("texts-null-entry", &out);
  const char *not_utf8[1] = {"\xff\xfe"};
  expect("texts-not-utf8", vtde_embed_texts(model, not_utf8, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("labels-null-template", vtde_embed_labels(model, texts, 1, texts + 1, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  const char *bad_template[1] = {"a photo"};
  expect("labels-bad-template", vtde_embed_labels(model, texts, 1, bad_template, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("texts-null-out", vtde_embed_texts(model, texts, 1, NULL), VTDE_STATUS_INVALID_ARGUMENT);

  /* Files. */
  const char *missing[1] = {"/nonexistent/picture.png"};
  expect("file-missing", vtde_embed_image_files(model, missing, 1, &out), VTDE_STATUS_IMAGE);
  expect_empty("file-missing", &out);
  const char *corrupt[1] = {argv[2]};
  expect("file-corrupt", vtde_embed_image_files(model, corrupt, 1, &out), VTDE_STATUS_IMAGE);
  const char *null_path[1] = {NULL};
  expect("file-null-path", vtde_embed_image_files(model, null_path, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);

  /* Encoded bytes. */
  const unsigned char garbage[16] = "not an image....";
  const unsigned char *data[1] = {garbage};
  size_t size = sizeof garbage;
  expect("bytes-corrupt", vtde_embed_encoded_images(model, data, &size, 1, &out),
         VTDE_STATUS_IMAGE);
  size_t zero = 0;
  expect("bytes-zero-size", vtde_embed_encoded_images(model, data, &zero, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  const unsigned char *null_data[1] = {NULL};
  expect("bytes-null-data", vtde_embed_encoded_images(model, null_data, &size, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("bytes-null-sizes", vtde_embed_encoded_images(model, data, NULL, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);

  /* RGB8 buffers. */
  static unsigned char pixels[64 * 8];
  VtdeRgbImage narrow_stride = {pixels, 8, 8, 23}; /* a row is 24 bytes */
  expect("rgb-stride-short", vtde_embed_rgb8_images(model, &narrow_stride, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  VtdeRgbImage zero_width = {pixels, 0, 8, 24};
  expect("rgb-zero-width", vtde_embed_rgb8_images(model, &zero_width, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  VtdeRgbImage zero_height = {pixels, 8, 0, 24};
  expect("rgb-zero-height", vtde_embed_rgb8_images(model, &zero_height, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  VtdeRgbImage null_pixels = {NULL, 8, 8, 24};
  expect("rgb-null-pixels", vtde_embed_rgb8_images(model, &null_pixels, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  VtdeRgbImage huge = {pixels, 4000000000u, 4000000000u, 24};
  expect("rgb-too-large", vtde_embed_rgb8_images(model, &huge, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("rgb-null-array", vtde_embed_rgb8_images(model, NULL, 1, &out),
         VTDE_STATUS_INVALID_ARGUMENT);

  /* Scores. */
  VtdeScores scores;
  float zeros[4] = {0, 0, 0, 0};
  expect("score-null-model", vtde_score(NULL, zeros, 1, zeros, 1, 4, &scores),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("score-null-embeds", vtde_score(model, NULL, 1, zeros, 1, 4, &scores),
         VTDE_STATUS_INVALID_ARGUMENT);
  expect("score-dim-zero", vtde_score(model, zeros, 1, zeros, 1, 0, &scores),
         VTDE_STATUS_INVALID_ARGUMENT);
  float nans[4] = {NAN, NAN, NAN, NAN};
  expect("score-nan-embedding", vtde_score(model, nans, 1, zeros, 1, 4, &scores),
         VTDE_STATUS_RUNTIME);
  expect("score-null-out", vtde_score(model, zeros, 1, zeros, 1, 4, NULL),
         VTDE_STATUS_INVALID_ARGUMENT);
  vtde_scores_free(&scores);
  vtde_scores_free(NULL);

  /* A good call clears the message. */
  VtdeStatus good = vtde_embed_texts(model, texts, 1, &out);
  int cleared = good == VTDE_STATUS_OK && strlen(vtde_last_error_message()) == 0 && out.rows == 1;
  printf("%s success-clears-message\n", cleared ? "ok" : "FAIL");
  if (!cleared) failures++;
  vtde_matrix_free(&out);
  vtde_matrix_free(&out); /* freeing twice is harmless: the matrix was emptied */
  vtde_matrix_free(NULL);
  vtde_model_free(model);
  vtde_model_free(NULL);

  printf("%d failures\n", failures);
  return failures == 0 ? 0 : 1;
}
