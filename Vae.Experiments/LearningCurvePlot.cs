using SkiaSharp;

namespace Vae.Experiments;

/// <summary>What Monte Carlo EM's points stand at on a learning curve's horizontal axis.</summary>
public enum McemAxis
{
    /// <summary>EM iterations × 5 N: each of the M-step's five full-batch weight updates counts N training samples (ours,
    /// the samples the runs record).</summary>
    IterationsTimesFiveN,
    /// <summary>EM iterations × N: one pass over the training set per iteration (anglepy's <c>loop_mcem</c> counts
    /// iterations).</summary>
    IterationsTimesN,
}

/// <summary>Figures laid out like the paper's: one panel per latent size, the measure against training samples
/// evaluated on a log axis, train solid and test dashed, one colour per algorithm. Drawn with ScottPlot.</summary>
public static class LearningCurvePlot
{
    static readonly IReadOnlyDictionary<string, (string Name, ScottPlot.Color Colour)> Styles = new Dictionary<string, (string, ScottPlot.Color)>
    {
        ["aevb"] = ("AEVB", new ScottPlot.Color(31, 119, 180)),
        ["wake-sleep"] = ("Wake-Sleep", new ScottPlot.Color(214, 39, 40)),
        ["mcem"] = ("MCEM", new ScottPlot.Color(44, 160, 44)),
    };

    /// <summary>Draws one panel per latent size of <paramref name="results"/> into a PNG file at <paramref name="path"/>
    /// (written atomically), each <paramref name="panelWidth"/> x <paramref name="panelHeight"/> pixels, titled and with
    /// the horizontal axis of its experiment (see <see cref="PanelTitle"/>).</summary>
    public static void Save(ExperimentResults results, string path, int panelWidth = 420, int panelHeight = 420) =>
        Save([results], path, panelWidth, panelHeight);

    /// <summary>Draws <paramref name="rows"/> one above the other, one panel per latent size in each, as the paper's Figure 2
    /// lays out MNIST above Frey Face: training samples on a log axis for Figure 2, in millions for Figure 3; train solid,
    /// test dashed, one colour per algorithm. The PNG at <paramref name="path"/> is written atomically.</summary>
    public static void Save(IReadOnlyList<ExperimentResults> rows, string path, int panelWidth = 420, int panelHeight = 420) =>
        Save(rows, path, McemAxis.IterationsTimesFiveN, panelWidth, panelHeight);

    /// <summary>As <see cref="Save(IReadOnlyList{ExperimentResults}, string, int, int)"/>, with Monte Carlo EM's points
    /// placed as <paramref name="mcemAxis"/> says; <see cref="McemAxis.IterationsTimesN"/> needs each Monte Carlo EM run's
    /// <see cref="ExperimentRun.SamplesPerIteration"/> (an <see cref="InvalidDataException"/> names a run without it).</summary>
    public static void Save(IReadOnlyList<ExperimentResults> rows, string path, McemAxis mcemAxis, int panelWidth = 420, int panelHeight = 420)
    {
        if (!Enum.IsDefined(mcemAxis)) throw new ArgumentOutOfRangeException(nameof(mcemAxis), mcemAxis, "expected IterationsTimesFiveN or IterationsTimesN");
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(panelWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(panelHeight, 1);
        if (rows.Count == 0) throw new ArgumentException("expected one or more results to draw", nameof(rows));
        foreach (var row in rows)
        {
            ArgumentNullException.ThrowIfNull(row, nameof(rows));
            if (!Draws(row)) throw new ArgumentException($"{row.Experiment}: expected the results of figure2, figure3 or iwae-table (learning curves)", nameof(rows));
        }
        ScriptNatives.EnsureSkia();
        var sizes = rows.Select(r => r.Runs.Select(run => run.LatentDimensions).Distinct().ToList()).ToList();
        using var surface = SKSurface.Create(new SKImageInfo(panelWidth * Math.Max(1, sizes.Max(s => s.Count)), panelHeight * rows.Count));
        surface.Canvas.Clear(SKColors.White);
        for (int row = 0; row < rows.Count; row++)
            for (int i = 0; i < sizes[row].Count; i++)
            {
                var plot = Panel(rows[row], sizes[row][i], PanelTitle(rows[row], sizes[row][i]), rows[row].Experiment != "figure3", i == 0, mcemAxis);
                using var panel = SKBitmap.Decode(plot.GetImageBytes(panelWidth, panelHeight, ScottPlot.ImageFormat.Png));
                surface.Canvas.DrawBitmap(panel, i * panelWidth, row * panelHeight);
            }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        Vae.Core.Files.writeAtomically(path, png.ToArray());
    }

    /// <summary>Whether <paramref name="results"/> are learning curves this class draws: Figure 2's, Figure 3's or the IWAE
    /// table's (one panel, a colour per objective and k).</summary>
    public static bool Draws(ExperimentResults results) =>
        results is { Experiment: "figure2" or "figure3" or "iwae-table" };

    /// <summary>Colours of the runs an experiment names by objective and k, in the order of its runs.</summary>
    static readonly ScottPlot.Color[] Palette =
    [
        new(31, 119, 180), new(214, 39, 40), new(44, 160, 44), new(255, 127, 14), new(148, 103, 189), new(140, 86, 75), new(227, 119, 194), new(127, 127, 127),
    ];

    /// <summary>A run's name and colour in the legend: its algorithm's, or (a run named by objective and k) "IWAE k = 5"
    /// in the <paramref name="index"/>-th colour.</summary>
    static (string Name, ScottPlot.Color Colour) Style(ExperimentRun run, int index) =>
        run.Objective is { } objective ? ($"{objective.ToUpperInvariant()} k = {run.K}", Palette[index % Palette.Length])
        : Styles.TryGetValue(run.Algorithm, out var s) ? s : (run.Algorithm, ScottPlot.Colors.Black);

    /// <summary>The data set's name in titles: the results' <c>label</c> setting, else their data set's description up to
    /// the colon ("MNIST", "Frey Face").</summary>
    public static string DatasetName(ExperimentResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        return results.Settings.TryGetValue("label", out var label) ? label : results.Dataset.Split(':', 2)[0].Trim();
    }

    /// <summary>A panel's title: the data set's name (<see cref="DatasetName"/>) and J, and for Figure 3 the training
    /// images, as "MNIST, J = 20" or "MNIST, N_train = 1000, J = 3".</summary>
    public static string PanelTitle(ExperimentResults results, int latentDimensions)
    {
        string name = DatasetName(results);
        return results.Experiment == "figure3" && results.Settings.TryGetValue("train_images", out var n)
            ? $"{name}, N_train = {n}, J = {latentDimensions}"
            : $"{name}, J = {latentDimensions}";
    }

    /// <summary>The vertical axis's range when a curve's first evaluation lies far below everything else (Monte Carlo
    /// EM's value at the end of its Adagrad warm-up): the range of the other points, padded by 5 %, so that the first
    /// point leaves the axis instead of squeezing the curves together. Null (the plot's own range) otherwise; "far"
    /// means farther below the lowest other point than twice the other points' whole spread.</summary>
    internal static (double Bottom, double Top)? VerticalRange(IEnumerable<IReadOnlyList<double>> curves)
    {
        var all = curves.Select(c => c.Where(double.IsFinite).ToList()).Where(c => c.Count > 0).ToList();
        var rest = all.SelectMany(c => c.Skip(1)).ToList();
        if (rest.Count < 2) return null;
        double low = rest.Min(), high = rest.Max(), spread = high - low;
        if (!all.Any(c => c[0] < low - 2 * spread)) return null;
        var kept = rest.Concat(all.Select(c => c[0]).Where(y => y >= low - 2 * spread)).ToList();
        double bottom = kept.Min(), top = kept.Max(), pad = 0.05 * (top - bottom);
        return (bottom - pad, top + pad);
    }

    /// <summary>Where a run's evaluation stands on the horizontal axis, in training samples: as recorded, or for Monte
    /// Carlo EM on <see cref="McemAxis.IterationsTimesN"/> its EM iterations × N (the recorded samples / 5).</summary>
    internal static double AxisSamples(ExperimentRun run, EvaluationResult e, McemAxis axis)
    {
        if (axis == McemAxis.IterationsTimesFiveN || run.Algorithm != TrainingAlgorithm.MonteCarloEm.Name()) return e.SamplesSeen;
        if (run.SamplesPerIteration is not long perIteration)
            throw new InvalidDataException($"{run.Directory}: a Monte Carlo EM run without samples_per_iteration in its results; collect the experiment again to draw it on EM iterations × N");
        return (double)e.SamplesSeen / perIteration * (perIteration / Vae.Core.Mcem.WeightUpdates);
    }

    static ScottPlot.Plot Panel(ExperimentResults results, int latent, string title, bool logSamples, bool yLabel, McemAxis mcemAxis)
    {
        var plot = new ScottPlot.Plot();
        plot.Font.Set("DejaVu Sans");
        foreach (var (run, index) in results.Runs.Where(r => r.LatentDimensions == latent && r.Series.Count > 0).Select((r, i) => (r, i)))
        {
            var (name, colour) = Style(run, index);
            double[] x = [.. run.Series.Select(e => AxisSamples(run, e, mcemAxis)).Select(v => logSamples ? Math.Log10(v) : v / 1e6)];
            void Line(double[] y, string label, ScottPlot.LinePattern pattern)
            {
                var line = plot.Add.ScatterLine(x, y, colour);
                line.LegendText = label;
                line.LinePattern = pattern;
                line.LineWidth = 2;
            }
            Line([.. run.Series.Select(e => e.TrainBound)], $"{name} train", ScottPlot.LinePattern.Solid);
            if (run.Series.All(e => !double.IsNaN(e.TestBound)))
                Line([.. run.Series.Select(e => e.TestBound)], $"{name} test", ScottPlot.LinePattern.Dashed);
        }
        var curves = results.Runs.Where(r => r.LatentDimensions == latent && r.Series.Count > 0)
            .SelectMany(r => new[] { r.Series.Select(e => e.TrainBound).ToList(), r.Series.Select(e => e.TestBound).ToList() });
        if (VerticalRange(curves) is var (bottom, top)) plot.Axes.SetLimitsY(bottom, top);
        // Log axis: the data are log10(samples); ticks at powers of ten, labelled 10^k, with log-spaced minor ticks.
        if (logSamples)
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = v => $"1e{v:0}",
            };
        plot.Axes.Bottom.Label.Text = (logSamples ? "training samples evaluated" : "training samples evaluated (millions)")
            + (mcemAxis == McemAxis.IterationsTimesN && results.Runs.Any(r => r.LatentDimensions == latent && r.Algorithm == TrainingAlgorithm.MonteCarloEm.Name())
                ? "; MCEM: EM iterations × N" : "");
        if (yLabel) plot.Axes.Left.Label.Text = results.Measure;
        plot.Title(title);
        plot.ShowLegend(ScottPlot.Edge.Bottom);
        return plot;
    }
}
