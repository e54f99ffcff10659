using System.Diagnostics;
using System.Globalization;
using System.Text;
using Vae.Data;

namespace Vae.Experiments;

/// <summary>Settings of <see cref="IwaeTable"/>: Burda, Grosse and Salakhutdinov (2015), Table 1, the MNIST rows with one
/// stochastic layer. The defaults are their text's: 784-200-200-50 tanh networks, Adam (β₁ 0.9, β₂ 0.999, ε 10⁻⁴) at
/// 0.001 with their schedule of 3280 passes, minibatches of 20, dynamically binarised MNIST, test log p(x) by the
/// importance-weighted estimate with K = 5000.</summary>
public sealed record IwaeTableOptions
{
    /// <summary>Burda et al.'s k: samples per datapoint of both objectives (the table: 1, 5, 50).</summary>
    public IReadOnlyList<int> Ks { get; init; } = [1, 5, 50];
    /// <summary>The objectives: <see cref="TrainingObjective.Elbo"/> is the table's VAE (the lower bound averaged over k
    /// draws), <see cref="TrainingObjective.ImportanceWeighted"/> its IWAE (eq. 8). At k = 1 they are one function
    /// (eq. 8 with k = 1 is estimator A), so one run, named <c>vae-k1</c>, fills both cells, as the table shows one value.</summary>
    public IReadOnlyList<TrainingObjective> Objectives { get; init; } = [TrainingObjective.Elbo, TrainingObjective.ImportanceWeighted];
    /// <summary>The VAE rows' estimator of the lower bound: A (eq. 6), as Burda et al.'s code averages the k log weights;
    /// B (eq. 7) takes the KL term in closed form.</summary>
    public SgvbEstimator VaeEstimator { get; init; } = SgvbEstimator.A;
    /// <summary>Passes over the training set per run (Burda et al.: 3ⁱ passes for i = 0…7, 3280 in all); fewer stop the
    /// schedule early.</summary>
    public double Passes { get; init; } = TotalPasses;
    /// <summary>Latent dimensions (Burda et al.: 50).</summary>
    public int LatentDimensions { get; init; } = 50;
    /// <summary>Hidden units of each tanh layer (Burda et al.: 200).</summary>
    public int HiddenUnits { get; init; } = 200;
    /// <summary>Tanh layers in encoder and decoder (Burda et al.: 2).</summary>
    public int HiddenLayers { get; init; } = 2;
    /// <summary>Minibatch size (Burda et al.: 20).</summary>
    public int BatchSize { get; init; } = 20;
    /// <summary>Adam's first step size (Burda et al.: 0.001, lowered by 10^(1/7) per stage).</summary>
    public double StepSize { get; init; } = 0.001;
    /// <summary>Adam's β₁ (Burda et al.'s text: 0.9; their code: 0.99).</summary>
    public double AdamBeta1 { get; init; } = 0.9;
    /// <summary>Adam's update (Burda et al.'s text: Kingma and Ba's; their code: <see cref="AdamVariant.BurdaCode"/>).</summary>
    public AdamVariant AdamVariant { get; init; }
    /// <summary>Adam's β₂ (0.999).</summary>
    public double AdamBeta2 { get; init; } = 0.999;
    /// <summary>Adam's ε (10⁻⁴).</summary>
    public double AdamEpsilon { get; init; } = 1e-4;
    /// <summary>The paper's N(0, I) prior on the weights (section 5's MAP objective); off by default, as neither Burda et
    /// al.'s text nor their code puts a prior or weight decay on the parameters.</summary>
    public bool WeightPrior { get; init; }
    /// <summary>How minibatches take the training data (Burda et al.'s text: not stated; their code:
    /// <see cref="MinibatchOrder.InOrder"/>); drawn with replacement by default, the paper's.</summary>
    public MinibatchOrder MinibatchOrder { get; init; }
    /// <summary>How the parameters are first drawn (Burda et al.'s text: not stated; their code:
    /// <see cref="ParameterInitialization.GlorotUniform"/>); the paper's N(0, 0.01²) by default.</summary>
    public ParameterInitialization Initialization { get; init; }
    /// <summary>The decoder's output bias before the first step (their code:
    /// <see cref="DecoderOutputBias.TrainingMeanLogit"/>); as drawn by default.</summary>
    public DecoderOutputBias DecoderOutputBias { get; init; }
    /// <summary>The coordinates Adam steps the encoder's scale head in (their code:
    /// <see cref="EncoderScaleHead.LogStandardDeviation"/>); log σ², the paper's, by default.</summary>
    public EncoderScaleHead EncoderScaleHead { get; init; }
    /// <summary>The training bound on at most this many training images (all when null).</summary>
    public int? TrainEvaluationLimit { get; init; } = 10_000;
    /// <summary>Each finished run's end point: the importance-weighted estimate of log p(x) with this K on the test images
    /// (Burda et al.: 5000), the test lower bound and the active units; 0: no end point.</summary>
    public int TestK { get; init; } = 5000;
    /// <summary>The end point on the first N test images; 0: all (the table).</summary>
    public int EndPointImages { get; init; }
    /// <summary>The seed of every run.</summary>
    public long Seed { get; init; }
    /// <summary>The directory holding one run directory per (objective, k), results.json, table.md and the figure.</summary>
    public string OutputDirectory { get; init; } = Path.Combine("runs", "iwae-table");

    /// <summary>Passes of Burda et al.'s whole schedule: Σᵢ 3ⁱ for i = 0…7.</summary>
    public const double TotalPasses = 3280;
}

/// <summary>A cell of <see cref="IwaeTable"/>: one objective at one k, its run and its end point beside Burda et al.'s.</summary>
/// <param name="Objective">"VAE" or "IWAE".</param>
/// <param name="K">Samples per datapoint.</param>
/// <param name="Run">The run directory's name (k = 1: both objectives read <c>vae-k1</c>).</param>
/// <param name="Passes">Passes over the training set the run reached.</param>
/// <param name="TestNll">−log p(x) per test image by the importance-weighted estimate with <see cref="IwaeTableOptions.TestK"/>
/// samples (nats), when the end point exists.</param>
/// <param name="ActiveUnits">Active latent units on the test images, when the end point exists.</param>
/// <param name="BurdaNll">Burda et al.'s Table 1 value, when the table has the cell.</param>
public sealed record IwaeTableCell(string Objective, int K, string Run, double Passes, double? TestNll, int? ActiveUnits, double? BurdaNll)
{
    /// <summary><see cref="TestNll"/> − <see cref="BurdaNll"/> (positive: ours is worse), when both exist.</summary>
    public double? Difference => TestNll - BurdaNll;
}

/// <summary>Burda, Grosse and Salakhutdinov (2015), Table 1's one-stochastic-layer MNIST rows: a VAE and an IWAE of the
/// same networks trained with k = 1, 5 and 50 samples by their schedule on dynamically binarised MNIST, each model's test
/// negative log-likelihood by the importance-weighted estimate with K = 5000 and its active latent units. Runs are
/// resumable and are tasks of a job array (<c>--jobs</c>, Slurm) as the other experiments'; the results are written to
/// <c>results.json</c>, <c>table.md</c> (ours beside Burda's) and <c>iwae-table.png</c> (the learning curves).</summary>
public static class IwaeTable
{
    /// <summary>Burda et al.'s Table 1, MNIST, one stochastic layer: test −log p(x) (nats) per (objective, k).</summary>
    public static IReadOnlyDictionary<(TrainingObjective Objective, int K), double> Burda { get; } = new Dictionary<(TrainingObjective, int), double>
    {
        [(TrainingObjective.Elbo, 1)] = 86.76, [(TrainingObjective.Elbo, 5)] = 86.47, [(TrainingObjective.Elbo, 50)] = 86.35,
        [(TrainingObjective.ImportanceWeighted, 1)] = 86.76, [(TrainingObjective.ImportanceWeighted, 5)] = 85.54, [(TrainingObjective.ImportanceWeighted, 50)] = 84.78,
    };

    /// <summary>The stage ends of Burda et al.'s schedule in passes (1, 4, 13, ..., 3280): the evaluation points.</summary>
    public static IReadOnlyList<double> StageEnds { get; } = [.. Enumerable.Range(0, 8).Select(i => (Math.Pow(3, i + 1) - 1) / 2)];

    /// <summary>A run's directory name: <c>vae-k{k}</c> or <c>iwae-k{k}</c>.</summary>
    public static string RunName(TrainingObjective objective, int k) =>
        string.Create(CultureInfo.InvariantCulture, $"{ObjectiveName(objective)}-k{k}");

    static string ObjectiveName(TrainingObjective objective) => objective == TrainingObjective.Elbo ? "vae" : "iwae";

    /// <summary>The (objective, k) pairs trained, in order of k then objective: (IWAE, 1) is left out when (VAE, 1) is
    /// trained, since it is the same function.</summary>
    public static IReadOnlyList<(TrainingObjective Objective, int K)> Cells(IwaeTableOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return [.. options.Ks.SelectMany(k => options.Objectives.Select(o => (o, k)))
                      .Where(c => !(c.o == TrainingObjective.ImportanceWeighted && c.k == 1 && options.Objectives.Contains(TrainingObjective.Elbo)))];
    }

    /// <summary>The runs of the experiment in order: task i of a job array trains run i.</summary>
    public static IReadOnlyList<ExperimentTask> Tasks(IwaeTableOptions options) =>
        [.. Cells(options).Select((c, i) => new ExperimentTask(i, RunName(c.Objective, c.K), options.LatentDimensions, TrainingAlgorithm.Aevb))];

    /// <summary>Runs (or continues) every run, then writes the results, the table and the figure. Cancellation stops after
    /// the current step with every run's checkpoint written; the results then hold what was done, and no figure is drawn.</summary>
    public static ExperimentResults Run(DataSet data, IwaeTableOptions options, IProgress<string>? log = null,
                                        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(data, options);
        var clock = Stopwatch.StartNew();
        var (runs, cancelled) = Train(data, options, Cells(options), log, progress, cancellationToken);
        return Save(data, options, runs, cancelled, [], clock.Elapsed.TotalSeconds);
    }

    /// <summary>Runs (or continues) only run <paramref name="task"/> of <see cref="Tasks"/>, as one task of a job array
    /// does; writes no results (the collector does, see <see cref="Collect"/>).</summary>
    public static (ExperimentRun Run, bool Cancelled) RunTask(DataSet data, IwaeTableOptions options, int task, IProgress<string>? log = null,
                                                            IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Validate(data, options);
        _ = ExperimentTask.Pick(Tasks(options), task);
        var (runs, cancelled) = Train(data, options, [Cells(options)[task]], log, progress, cancellationToken);
        return (runs[0], cancelled);
    }

    /// <summary>Reads every run as the tasks left it, without training, and writes results.json, the table and the figure
    /// of what there is; runs short of the budget (or absent) are named in the <c>unfinished</c> setting and returned.</summary>
    public static (ExperimentResults Results, IReadOnlyList<string> Unfinished) Collect(DataSet data, IwaeTableOptions options)
    {
        Validate(data, options);
        var clock = Stopwatch.StartNew();
        var cells = Cells(options).ToDictionary(c => RunName(c.Objective, c.K));
        var (found, unfinished) = ExperimentRuns.Collect(Tasks(options), options.OutputDirectory, Budget(data, options));
        var runs = found.Select(r => Describe(r, cells[Path.GetFileName(r.Directory)])).ToList();
        return (Save(data, options, runs, false, unfinished, clock.Elapsed.TotalSeconds), unfinished);
    }

    /// <summary>The table's cells from <paramref name="results"/>: for each k of the results' runs, VAE then IWAE (at
    /// k = 1 both from <c>vae-k1</c> when only it was trained), with each run's end point and Burda et al.'s value.</summary>
    public static IReadOnlyList<IwaeTableCell> Rows(ExperimentResults results)
    {
        ArgumentNullException.ThrowIfNull(results);
        if (results.Experiment != "iwae-table") throw new ArgumentException($"{results.Experiment}: expected the results of iwae-table", nameof(results));
        double trainImages = double.Parse(results.Settings["train_images"], CultureInfo.InvariantCulture);
        var cells = new List<IwaeTableCell>();
        foreach (int k in results.Runs.Where(r => r.K is not null).Select(r => r.K!.Value).Distinct().Order())
            foreach (var objective in (TrainingObjective[])[TrainingObjective.Elbo, TrainingObjective.ImportanceWeighted])
            {
                var run = results.Runs.FirstOrDefault(r => r.K == k && r.Objective == ObjectiveName(objective))
                    ?? (k == 1 ? results.Runs.FirstOrDefault(r => r.K == 1 && r.Objective == ObjectiveName(TrainingObjective.Elbo)) : null);
                if (run is null) continue;
                double? Field(string name) => run.EndPoint is { } e && e.TryGetValue(name, out var v) && v.TryGetDouble(out double d) ? d : null;
                cells.Add(new IwaeTableCell(objective == TrainingObjective.Elbo ? "VAE" : "IWAE", k, Path.GetFileName(run.Directory),
                    (run.Series.LastOrDefault()?.SamplesSeen ?? 0) / trainImages, -Field("test_iwae"), (int?)Field("active_units"),
                    Burda.TryGetValue((objective, k), out double b) ? b : null));
            }
        return cells;
    }

    /// <summary>The table as Markdown: each cell's passes, test −log p(x), Burda et al.'s value, the difference and the
    /// active units.</summary>
    public static string Markdown(ExperimentResults results)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"Test negative log-likelihood (nats) on {results.Dataset}, by the importance-weighted estimate with K = {results.Settings["test_k"]}; seed {results.Seed}.");
        text.AppendLine();
        text.AppendLine("| objective | k | run | passes | −log p(x) | Burda et al. | difference | active units |");
        text.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|");
        static string Num(double? v, string format) => v?.ToString(format, CultureInfo.InvariantCulture) ?? "";
        foreach (var c in Rows(results))
            text.AppendLine(CultureInfo.InvariantCulture, $"| {c.Objective} | {c.K} | {c.Run} | {Num(c.Passes, "0.##")} | {Num(c.TestNll, "F2")} | {Num(c.BurdaNll, "F2")} | {Num(c.Difference, "+0.00;-0.00")} | {c.ActiveUnits?.ToString(CultureInfo.InvariantCulture) ?? ""} |");
        return text.ToString();
    }

    static void Validate(DataSet data, IwaeTableOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Ks.Count == 0 || options.Ks.Any(k => k < 1) || options.Ks.Distinct().Count() != options.Ks.Count)
            throw new ArgumentOutOfRangeException(nameof(options), "k: expected one or more distinct sample counts of at least 1");
        if (options.Objectives.Count == 0 || options.Objectives.Any(o => !Enum.IsDefined(o)) || options.Objectives.Distinct().Count() != options.Objectives.Count)
            throw new ArgumentOutOfRangeException(nameof(options), "objectives: expected Elbo, ImportanceWeighted or both");
        if (!(options.Passes > 0) || !double.IsFinite(options.Passes)) throw new ArgumentOutOfRangeException(nameof(options), options.Passes, "passes: expected a positive number");
        if (Budget(data, options) < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Passes, "passes: expected at least one training sample");
        if (options.TestK < 0) throw new ArgumentOutOfRangeException(nameof(options), options.TestK, "test K: expected 0 (no end point) or more");
        if (options.EndPointImages < 0) throw new ArgumentOutOfRangeException(nameof(options), options.EndPointImages, "end-point images: expected 0 (all) or more");
    }

    /// <summary>Training samples per run: the passes over the training set, rounded.</summary>
    public static long Budget(DataSet data, IwaeTableOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        return (long)Math.Round(options.Passes * data.Train.Count);
    }

    /// <summary>The evaluation points: the schedule's stage ends within the budget, and the budget.</summary>
    static IReadOnlyList<long> Points(DataSet data, IwaeTableOptions options)
    {
        long budget = Budget(data, options);
        return [.. StageEnds.Select(p => (long)Math.Round(p * data.Train.Count)).Where(s => s < budget).Append(budget)];
    }

    static EndPointOptions? EndPointOf(IwaeTableOptions options) => options.TestK == 0 ? null : new EndPointOptions
    {
        Points = options.EndPointImages, ActiveUnits = true,
        TestEstimators =
        [
            new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.Elbo },
            new MarginalLikelihoodOptions { Method = MarginalLikelihoodMethod.ImportanceWeighted, ImportanceSamples = options.TestK },
        ],
    };

    static ExperimentRun Describe(ExperimentRun run, (TrainingObjective Objective, int K) cell) => run with { Objective = ObjectiveName(cell.Objective), K = cell.K };

    static (IReadOnlyList<ExperimentRun> Runs, bool Cancelled) Train(DataSet data, IwaeTableOptions options, IReadOnlyList<(TrainingObjective Objective, int K)> cells,
        IProgress<string>? log, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var model = new VaeModelOptions
        {
            InputDimension = data.Train.Dimension, HiddenUnits = options.HiddenUnits, HiddenLayers = options.HiddenLayers,
            LatentDimensions = options.LatentDimensions, Likelihood = DecoderLikelihood.Bernoulli,
        };
        AevbOptions Aevb(TrainingObjective objective, int k) => new()
        {
            Objective = objective, Estimator = objective == TrainingObjective.Elbo ? options.VaeEstimator : SgvbEstimator.B, SamplesPerDatapoint = k,
            BatchSize = options.BatchSize, Optimizer = TrainingOptimizer.Adam, StepSize = options.StepSize, Schedule = StepSizeSchedule.Burda,
            AdamBeta1 = options.AdamBeta1, AdamBeta2 = options.AdamBeta2, AdamEpsilon = options.AdamEpsilon, AdamVariant = options.AdamVariant, WeightPrior = options.WeightPrior,
            MinibatchOrder = options.MinibatchOrder, Initialization = options.Initialization, DecoderOutputBias = options.DecoderOutputBias,
            EncoderScaleHead = options.EncoderScaleHead,
            Binarize = true, Seed = options.Seed,
        };
        var planned = cells.Select(c => new PlannedRun(RunName(c.Objective, c.K), $"{(c.Objective == TrainingObjective.Elbo ? "VAE" : "IWAE")}, k = {c.K}",
            TrainingAlgorithm.Aevb, options.LatentDimensions, _ => new AevbTrainer(model, Aevb(c.Objective, c.K), data.Description)));
        var (runs, cancelled) = ExperimentRuns.RunPlanned(planned, options.OutputDirectory, data,
            new TrainingOptions { TotalSamples = Budget(data, options), EvaluateAt = Points(data, options), TrainEvaluationLimit = options.TrainEvaluationLimit },
            log, progress, cancellationToken, EndPointOf(options));
        return ([.. runs.Zip(cells, Describe)], cancelled);
    }

    /// <summary>Writes results.json, table.md and (unless cancelled) the figure.</summary>
    static ExperimentResults Save(DataSet data, IwaeTableOptions options, IReadOnlyList<ExperimentRun> runs, bool cancelled, IReadOnlyList<string> unfinished, double seconds)
    {
        string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        var settings = new Dictionary<string, string>
        {
            ["label"] = "binarized MNIST",
            ["train_images"] = data.Train.Count.ToString(CultureInfo.InvariantCulture),
            ["networks"] = Invariant($"{data.Train.Dimension}-{string.Join("-", Enumerable.Repeat(options.HiddenUnits, options.HiddenLayers))}-{options.LatentDimensions} tanh, Bernoulli decoder")
                + (options.EncoderScaleHead == EncoderScaleHead.LogStandardDeviation ? "; the encoder's scale head log sigma = W' h + b', Adam stepping on W' and b' (their code; the model stores log sigma^2)" : ""),
            ["objectives"] = Invariant($"vae: the lower bound averaged over k draws by estimator {options.VaeEstimator}; iwae: the importance-weighted bound (Burda et al. eq. 8)"),
            ["optimizer"] = Invariant($"Adam ({(options.AdamVariant == AdamVariant.BurdaCode ? "Burda et al.'s code's update, " : "")}beta1 {options.AdamBeta1}, beta2 {options.AdamBeta2}, epsilon {options.AdamEpsilon}), step size {options.StepSize}, Burda's schedule (3^i passes at 10^(-i/7) times the step size)"),
            ["weight_prior"] = options.WeightPrior ? "N(0, I) on the weights, scaled by M/N (the paper's)" : "none (maximum likelihood, as Burda et al.)",
            ["batch"] = options.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["minibatch_order"] = options.MinibatchOrder == MinibatchOrder.InOrder ? "the data's order, the same every pass (Burda et al.'s code)" : "drawn with replacement at every step (the paper's)",
            ["passes"] = options.Passes.ToString(CultureInfo.InvariantCulture),
            ["initialisation"] = (options.Initialization == ParameterInitialization.GlorotUniform
                    ? "weights uniform on +-sqrt(6 / (fan-in + fan-out)), biases 0 (Glorot and Bengio; Burda et al.'s code)"
                    : "N(0, 0.01^2) weights and biases (the paper's; Burda et al.'s code: Glorot)")
                + (options.DecoderOutputBias == DecoderOutputBias.TrainingMeanLogit ? "; the decoder's output bias at the logit of the training mean (their code)" : ""),
            ["binarization"] = "a fresh binary draw of each training image per minibatch; test images binarized once",
            ["train_evaluation"] = options.TrainEvaluationLimit is int n ? $"first {n} training images, binarized once" : "all training images, binarized once",
            ["evaluation_points"] = string.Join(" ", Points(data, options)),
            ["test_k"] = options.TestK.ToString(CultureInfo.InvariantCulture),
            ["end_point_images"] = options.EndPointImages == 0 ? "all test images" : options.EndPointImages.ToString(CultureInfo.InvariantCulture),
            ["active_units"] = "latent dimensions whose encoder mean varies over the test images by more than 0.01 (Burda et al.'s measure; their code: the first 500 training images)",
            ["cancelled"] = cancelled.ToString(),
        };
        if (unfinished.Count > 0) settings["unfinished"] = string.Join(", ", unfinished);
        var results = new ExperimentResults("iwae-table", data.Description, Budget(data, options), options.Seed, settings,
            "lower bound per datapoint (nats)", runs, seconds, MachineFacts.Current(), ExperimentResults.BuildCommit);
        Directory.CreateDirectory(options.OutputDirectory);
        results.Save(Path.Combine(options.OutputDirectory, "results.json"));
        Vae.Core.Files.writeAtomically(Path.Combine(options.OutputDirectory, "table.md"), Encoding.UTF8.GetBytes(Markdown(results)));
        if (!cancelled && runs.Count > 0) LearningCurvePlot.Save(results, Path.Combine(options.OutputDirectory, FigureFileName));
        return results;
    }

    /// <summary>The learning curves' file in the output directory.</summary>
    public const string FigureFileName = "iwae-table.png";
}
