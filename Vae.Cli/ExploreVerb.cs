using System.CommandLine;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae explore --checkpoint DIR [--out model.html]</c>: the model's latent space as one self-contained HTML
/// page (sliders, the manifold for J = 2, a drawing encoded and reconstructed, the run's learning curves).</summary>
static class ExploreVerb
{
    static readonly Option<string> Out = Opt.Text("--out", "the HTML file (default: explore.html beside the checkpoint)", "FILE");
    static readonly Option<long> Sliders = Opt.Integer("--sliders", "sliders for the first N latent dimensions (the rest stay at 0)", 20, 1, 10_000);
    static readonly Option<long> Grid = Opt.Integer("--grid", "images per side of a J = 2 model's manifold", 20, 1, 100);

    /// <summary><c>vae explore</c>.</summary>
    public static Command Command(TextWriter stdout)
    {
        var command = new Command("explore", "Write a model's latent space as one HTML page that opens from the file system (no server)")
            { Common.Checkpoint, Out, PictureVerbs.Height, PictureVerbs.Width, Sliders, Grid };
        command.SetAction(p => Run(new Arguments(p), stdout));
        return command;
    }

    static int Run(Arguments a, TextWriter stdout)
    {
        string path = Trainer.CheckpointPath(a.Get(Common.Checkpoint));
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string output = a.Get(Out) ?? Path.Combine(directory, "explore.html");
        if (!output.EndsWith(".html", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--out: {output}: expected a name ending in .html");
        using var model = VariationalAutoEncoder.Load(path);
        var (height, width) = PictureVerbs.ImageShape(a, model.Options.InputDimension);
        // A run directory's metrics.csv gives the learning curves; a lone model file has none.
        var curve = RunRecord.Exists(directory) ? RunRecord.Read(directory).Evaluations : [];
        model.ExportLatentSpacePage(output, new LatentSpacePageOptions
        {
            Title = Path.GetFileName(RunRecord.Exists(directory) ? directory : path),
            ImageHeight = height,
            ImageWidth = width,
            MaxSliders = (int)a.Get(Sliders),
            ManifoldGrid = (int)a.Get(Grid),
            LearningCurve = curve,
            Settings = VariationalAutoEncoder.ReadSettings(path),
        });
        var o = model.Options;
        stdout.WriteLine($"wrote {output}: J = {o.LatentDimensions}, images of {height} x {width}" +
                         (o.LatentDimensions == 2 ? ", the manifold" : "") + (curve.Count > 0 ? $", learning curves ({curve.Count} evaluations)" : "") +
                         "; open it in a browser (no server needed)");
        return VaeCommand.Ok;
    }
}
