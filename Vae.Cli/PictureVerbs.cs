using Vae.Data;

namespace Vae.Cli;

/// <summary><c>vae sample</c>, <c>vae reconstruct</c> and <c>vae manifold</c>: PNG mosaics from a checkpoint.</summary>
static class PictureVerbs
{
    public static int Run(string verb, string[] args, TextWriter stdout, TextWriter stderr)
    {
        var a = new Arguments(verb, args, ["checkpoint", "out", "count", "columns", "grid", "seed", "height", "width", "cache", "frey-face"], []);
        a.AtMostPositional(0, verb);
        string path = a.String("checkpoint") ?? throw new UsageException($"{verb}: --checkpoint FILE is required");
        path = Trainer.CheckpointPath(path);
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");
        string output = a.String("out") ?? $"{verb}.png";
        var model = VariationalAutoEncoder.Load(path);
        int d = model.Options.InputDimension;
        // Image shape: as given, else the paper's data sets' (MNIST 28 x 28, Frey Face 28 x 20).
        int height = (int)a.Integer("height", d == 560 ? 28 : (int)Math.Round(Math.Sqrt(d)), 1, d);
        int width = (int)a.Integer("width", d / height, 1, d);
        if (height * width != d) throw new UsageException($"--height/--width: {height} x {width} is not the model's {d} values per image");
        float[,] images;
        int columns;
        switch (verb)
        {
            case "sample":
                int count = (int)a.Integer("count", 100, 1, 10_000);
                columns = (int)a.Integer("columns", (int)Math.Ceiling(Math.Sqrt(count)), 1, 10_000);
                images = model.Sample(count, a.Integer("seed", 0, 0));
                break;
            case "manifold":
                int n = (int)a.Integer("grid", 20, 1, 200);
                if (model.Options.LatentDimensions != 2) throw new UsageException($"manifold: the model has {model.Options.LatentDimensions} latent dimensions; a manifold needs 2");
                images = model.Manifold(n);
                columns = n;
                break;
            default: // reconstruct: test images in one row, their reconstructions in the next
                int pairs = (int)a.Integer("count", 10, 1, 1000);
                var fields = VariationalAutoEncoder.ReadSettings(path);
                var test = DataChoice.FromFields(fields, a.String("cache"), a.String("frey-face")).Load(stderr).Test;
                var originals = new float[pairs, d];
                for (int i = 0; i < pairs; i++) test.Image(i).CopyTo(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref originals[i, 0], d));
                var rebuilt = model.Reconstruct(originals);
                images = new float[2 * pairs, d];
                Buffer.BlockCopy(originals, 0, images, 0, pairs * d * sizeof(float));
                Buffer.BlockCopy(rebuilt, 0, images, pairs * d * sizeof(float), pairs * d * sizeof(float));
                columns = pairs;
                break;
        }
        ImageMosaic.SavePng(output, images, height, width, columns);
        stdout.WriteLine($"wrote {output} ({images.GetLength(0)} images of {height} x {width})");
        return VaeCommand.Ok;
    }
}
