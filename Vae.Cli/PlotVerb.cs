using System.CommandLine;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae plot RESULTS.json... [--out FILE]</c>: experiments' learning curves redrawn from their results.json,
/// one row each, as the paper lays out Figure 2 (MNIST above Frey Face).</summary>
static class PlotVerb
{
    static readonly Argument<string[]> Results = new("results") { Description = "results.json files, one row of panels each, top to bottom", Arity = ArgumentArity.OneOrMore };
    static readonly Option<string> Out = Opt.Text("--out", "the PNG file (default: figure.png)", "FILE");
    static readonly Option<string> McemAxisOption = Opt.Choice("--mcem-axis", "Monte Carlo EM's points at EM iterations x 5N (each of the M-step's five full-batch updates counts N samples) or x N (anglepy's loop_mcem)", "5n", "5n", "n");

    /// <summary><c>vae plot</c>.</summary>
    public static Command Command(TextWriter stdout)
    {
        var command = new Command("plot", "Draw experiments' learning curves from their results.json files, one row each") { Results, Out, McemAxisOption };
        command.SetAction(p =>
        {
            var files = p.GetValue(Results)!;
            var rows = files.Select(ExperimentResults.Load).ToList();
            string output = new Arguments(p).Get(Out) ?? "figure.png";
            if (!output.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--out: {output}: expected a name ending in .png");
            foreach (var (file, row) in files.Zip(rows))
            {
                if (!LearningCurvePlot.Draws(row)) throw new InvalidDataException($"{file}: holds {row.Experiment} results; expected figure2's or figure3's learning curves");
                if (!row.Runs.Any(r => r.Series.Count > 0)) throw new InvalidDataException($"{file}: holds no evaluated runs to draw");
            }
            var args = new Arguments(p);
            LearningCurvePlot.Save(rows, output, args.Get(McemAxisOption) == "n" ? McemAxis.IterationsTimesN : McemAxis.IterationsTimesFiveN);
            stdout.WriteLine($"wrote {output}: {string.Join("; ", rows.Select(r => $"{r.Experiment} on {LearningCurvePlot.DatasetName(r)}, {r.Runs.Select(x => x.LatentDimensions).Distinct().Count()} panels"))}");
            return VaeCommand.Ok;
        });
        return command;
    }
}
