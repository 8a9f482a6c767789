/* vtde from C: zero-shot scores of image files against labels.
 *
 *   cc score.c -I crates/vtde-capi/include -L target/release -lvtde -o score
 *   ./score models/demo models/examples/red_circle.png ... -- "a red circle" "a blue square"
 *
 * Prints one CSV row per image (its probability for each label), then the same for the
 * first image read into memory (vtde_embed_encoded_images) and for a red square drawn
 * here in an RGB8 buffer with padded rows (vtde_embed_rgb8_images). Numbers are printed
 * with 9 significant digits, enough to give back the exact float. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtde.h"

/* Prints the failed call and vtde's message, and exits. */
static void check(VtdeStatus status, const char *what) {
  if (status != VTDE_STATUS_OK) {
    fprintf(stderr, "%s failed (status %d): %s\n", what, (int)status, vtde_last_error_message());
    exit(1);
  }
}

/* One CSV row: the name, then each probability of `row` in `probs`. */
static void print_row(const char *name, const VtdeMatrix *probs, size_t row) {
  printf("%s", name);
  for (size_t t = 0; t < probs->cols; t++) printf(",%.9g", probs->data[row * probs->cols + t]);
  printf("\n");
}

/* Scores `images` (rows of embeddings) against `labels` and prints one row per name. */
static void score_and_print(const VtdeModel *model, const VtdeMatrix *images,
                            const VtdeMatrix *labels, const char *const *names) {
  VtdeScores scores;
  check(vtde_score(model, images->data, images->rows, labels->data, labels->rows, labels->cols,
                   &scores),
        "vtde_score");
  for (size_t i = 0; i < images->rows; i++) print_row(names[i], &scores.probs_per_image, i);
  vtde_scores_free(&scores);
}

static unsigned char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *data = n > 0 ? malloc((size_t)n) : NULL;
  if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *size = data ? (size_t)n : 0;
  return data;
}

int main(int argc, char **argv) {
  int dashes = 0;
  for (int i = 2; i < argc; i++)
    if (strcmp(argv[i], "--") == 0) dashes = i;
  if (argc < 5 || dashes < 3 || dashes == argc - 1) {
    fprintf(stderr, "usage: %s PACKAGE IMAGE... -- LABEL...\n", argv[0]);
    return 2;
  }
  const char *const *files = (const char *const *)&argv[2];
  size_t n_files = (size_t)(dashes - 2);
  const char *const *labels = (const char *const *)&argv[dashes + 1];
  size_t n_labels = (size_t)(argc - dashes - 1);

  VtdeOptions *options = vtde_options_new();
  check(vtde_options_set_threads(options, 2), "vtde_options_set_threads");
  check(vtde_options_set_providers(options, "cpu"), "vtde_options_set_providers");
  VtdeModel *model = NULL;
  check(vtde_model_open(argv[1], options, &model), "vtde_model_open");
  vtde_options_free(options);

  VtdeMatrix label_embeds, image_embeds;
  /* As `vtde score` does: each label through the prompt template "{}" (itself). */
  const char *templates[1] = {"{}"};
  check(vtde_embed_labels(model, labels, n_labels, templates, 1, &label_embeds),
        "vtde_embed_labels");
  check(vtde_embed_image_files(model, files, n_files, &image_embeds), "vtde_embed_image_files");

  printf("image");
  for (size_t t = 0; t < n_labels; t++) printf(",%s", labels[t]);
  printf("\n");
  score_and_print(model, &image_embeds, &label_embeds, files);

  /* The first file again, from memory. */
  size_t size = 0;
  unsigned char *bytes = read_file(files[0], &size);
  if (!bytes) {
    fprintf(stderr, "cannot read %s\n", files[0]);
    return 1;
  }
  const unsigned char *data[1] = {bytes};
  VtdeMatrix memory_embeds;
  check(vtde_embed_encoded_images(model, data, &size, 1, &memory_embeds),
        "vtde_embed_encoded_images");
  const char *memory_name[1] = {"memory:first"};
  score_and_print(model, &memory_embeds, &label_embeds, memory_name);
  free(bytes);

  /* A red square of 40 x 30 pixels in rows of 128 bytes (120 used). */
  enum { W = 40, H = 30, STRIDE = 128 };
  static unsigned char pixels[STRIDE * H];
  memset(pixels, 0xAB, sizeof pixels); /* padding that must be ignored */
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      pixels[y * STRIDE + 3 * x + 0] = 220;
      pixels[y * STRIDE + 3 * x + 1] = 20;
      pixels[y * STRIDE + 3 * x + 2] = 30;
    }
  VtdeRgbImage image = {pixels, W, H, STRIDE};
  VtdeMatrix rgb_embeds;
  check(vtde_embed_rgb8_images(model, &image, 1, &rgb_embeds), "vtde_embed_rgb8_images");
  const char *rgb_name[1] = {"rgb8:red"};
  score_and_print(model, &rgb_embeds, &label_embeds, rgb_name);

  vtde_matrix_free(&rgb_embeds);
  vtde_matrix_free(&memory_embeds);
  vtde_matrix_free(&image_embeds);
  vtde_matrix_free(&label_embeds);
  vtde_model_free(model);
  return 0;
}
