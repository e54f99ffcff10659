using System.CommandLine;
using Vae.Data;

namespace Vae.Cli;

/// <summary><c>vae sample</c>, <c>vae reconstruct</c> and <c>vae manifold</c>: PNG mosaics from a checkpoint.</summary>
static class PictureVerbs
{
    static readonly Option<string> Out = Opt.Text("--out", "the PNG file (default: <verb>.png)", "FILE");
    internal static readonly Option<long?> Height = Opt.OptionalInteger("--height", "image height (default: 28, as MNIST and Frey Face)", 1);
    internal static readonly Option<long?> Width = Opt.OptionalInteger("--width", "image width (default: the model's values per image / height)", 1);
    static readonly Option<long> SampleCount = Opt.Integer("--count", "images to draw", 100, 1, 10_000);
    static readonly Option<long?> Columns = Opt.OptionalInteger("--columns", "images per row (default: a square)", 1, 10_000);
    static readonly Option<long> Pairs = Opt.Integer("--count", "test images, each above its reconstruction", 10, 1, 1000);
    static readonly Option<long> Grid = Opt.Integer("--grid", "points per latent axis", 20, 1, 200);

    /// <summary><c>vae sample</c>, <c>vae reconstruct</c> and <c>vae manifold</c>.</summary>
    public static IEnumerable<Command> Commands(TextWriter stdout, TextWriter stderr)
    {
        Command Make(string verb, string description, params Option[] own)
        {
            var command = new Command(verb, description) { Common.Checkpoint, Out, Height, Width };
            foreach (var o in own) command.Add(o);
            command.SetAction(p => Run(verb, new Arguments(p), stdout, stderr));
            return command;
        }
        yield return Make("sample", "A PNG mosaic of decoder means of z ~ N(0, I)", SampleCount, Columns, Common.Seed);
        yield return Make("reconstruct", "A PNG of test images above their reconstructions", Pairs, Common.Cache, Common.FreyFace);
        yield return Make("manifold", "A PNG of the learned manifold of a J = 2 model (Figure 4)", Grid);
    }

    /// <summary>Image shape: as given, else the paper's data sets' (MNIST 28 x 28, Frey Face 28 x 20).</summary>
    internal static (int Height, int Width) ImageShape(Arguments a, int values)
    {
        try { return ImageMosaic.Shape(values, (int?)a.Get(Height), (int?)a.Get(Width)); }
        catch (ArgumentException e) { throw new UsageException($"--height/--width: {e.Message}"); }
    }

    static int Run(string verb, Arguments a, TextWriter stdout, TextWriter stderr)
    {
        string path = Trainer.CheckpointPath(a.Get(Common.Checkpoint));
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");
        string output = a.Get(Out) ?? $"{verb}.png";
        using var model = VariationalAutoEncoder.Load(path);
        int d = model.Options.InputDimension;
        var (height, width) = ImageShape(a, d);
        float[,] images;
        int columns;
        switch (verb)
        {
            case "sample":
                int count = (int)a.Get(SampleCount);
                columns = (int)(a.Get(Columns) ?? (int)Math.Ceiling(Math.Sqrt(count)));
                images = model.Sample(count, a.Get(Common.Seed));
                break;
            case "manifold":
                int n = (int)a.Get(Grid);
                if (model.Options.LatentDimensions != 2) throw new UsageException($"manifold: the model has {model.Options.LatentDimensions} latent dimensions; a manifold needs 2");
                images = model.Manifold(n);
                columns = n;
                break;
            default: // reconstruct: test images in one row, their reconstructions in the next
                int pairs = (int)a.Get(Pairs);
                var fields = VariationalAutoEncoder.ReadSettings(path);
                var test = DataChoice.FromFields(fields, a.Get(Common.Cache), a.Get(Common.FreyFace)).Load(stderr).Test;
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
