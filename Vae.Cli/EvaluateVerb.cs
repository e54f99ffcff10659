using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Vae.Data;
using Vae.Experiments;

namespace Vae.Cli;

/// <summary><c>vae evaluate</c>: a checkpoint's test bound and importance-weighted log-likelihood, or one
/// estimator (elbo, iwae, hmc-marginal, exact) on the training and test sets.</summary>
static class EvaluateVerb
{
    static readonly Option<string> Estimator = Opt.Choice("--estimator", "one estimator on the training and test sets: the lower bound, importance-weighted (K samples from the encoder), Appendix D's, or the exact log p(x) by quadrature (J <= 3) (default: the test bound and the importance-weighted estimate)", null, "elbo", "iwae", "hmc-marginal", "exact");
    static readonly Option<long> K = Opt.Integer("--k", "importance samples per datapoint", 5000, 1, 1_000_000);
    static readonly Option<long?> Points = Opt.OptionalInteger("--points", "the first N training and test images (default: all)", 1, int.MaxValue);
    static readonly Option<long> PosteriorSamples = Opt.Integer("--posterior-samples", "hmc-marginal: HMC posterior samples per datapoint", 50, 4, 100_000);
    static readonly Option<long> Leapfrog = Opt.Integer("--leapfrog", "hmc-marginal: leapfrog steps per HMC transition", 4, 1, 10_000);
    static readonly Option<long> BurnIn = Opt.Integer("--burn-in", "hmc-marginal: burn-in transitions", new MarginalLikelihoodOptions().BurnIn, 0, 10_000_000);
    static readonly Option<long> StartCandidates = Opt.Integer("--start-candidates", "hmc-marginal: chains start at the best of this many draws from q(z|x) and as many from the prior; 0: at one draw from the prior (the paper's code)", new MarginalLikelihoodOptions().StartCandidates, 0, 1_000_000);
    static readonly Option<long> Draws = Opt.Integer("--draws", "repeat each estimate with seeds SEED, SEED+1, ... and report the mean and its standard error", 1, 1, 100_000);
    static readonly Option<bool> Json = Opt.Flag("--json", "print one JSON object");

    /// <summary><c>vae evaluate</c>.</summary>
    public static Command Command(TextWriter stdout, TextWriter stderr)
    {
        var command = new Command("evaluate", "Estimate a model's log-likelihood on its data set's test (and training) images");
        foreach (var o in (Option[])[Common.Checkpoint, Estimator, K, Points, PosteriorSamples, Leapfrog, BurnIn, StartCandidates, Common.Seed, Draws, Common.Threads, Common.Cache, Common.FreyFace, Common.Precision, Json])
            command.Add(o);
        command.SetAction(p => Run(new Arguments(p), stdout, stderr));
        return command;
    }

    static int Run(Arguments a, TextWriter stdout, TextWriter stderr)
    {
        string path = Trainer.CheckpointPath(a.Get(Common.Checkpoint));
        string? estimator = a.Get(Estimator);
        int k = (int)a.Get(K);
        int points = (int)(a.Get(Points) ?? 0);
        int posteriorSamples = (int)a.Get(PosteriorSamples);
        int leapfrog = (int)a.Get(Leapfrog);
        int burnIn = (int)a.Get(BurnIn);
        int startCandidates = (int)a.Get(StartCandidates);
        long seed = a.Get(Common.Seed);
        int draws = (int)a.Get(Draws);
        bool mixed = a.Get(Common.Precision) == "bfloat16";
        a.Threads(stderr);
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");

        var settings = VariationalAutoEncoder.ReadSettings(path);
        using var model = VariationalAutoEncoder.Load(path);
        if (estimator == "exact" && model.Options.LatentDimensions > MarginalLikelihoodEstimator.ExactMaxLatentDimensions)
            throw new UsageException($"--estimator exact: integrates over at most {MarginalLikelihoodEstimator.ExactMaxLatentDimensions} latent dimensions; this model has J = {model.Options.LatentDimensions} (use iwae or hmc-marginal)");
        if (mixed && (estimator is "elbo" or "hmc-marginal" or "exact"))
            throw new UsageException($"--precision bfloat16: applies to the importance-weighted estimate, not --estimator {estimator}");
        var data = DataChoice.FromFields(settings, a.Get(Common.Cache), a.Get(Common.FreyFace));
        var set = data.Load(stderr);
        // A model trained with dynamic binarisation is evaluated on one fixed binary draw of the images, as in training.
        bool binary = EndPoint.TrainedOnBinaryImages(settings);
        ImageData First(ImageData x, ulong binarizationSeed) => EndPoint.ForModel(settings, points > 0 ? x.First(points) : x, binarizationSeed);
        var test = First(set.Test, ImageData.TestBinarizationSeed);
        string description = binary && set.Name != "binarized-mnist"
            ? $"{set.Description}, binarized once (seeds: test {ImageData.TestBinarizationSeed}, train {ImageData.TrainEvaluationBinarizationSeed})" : set.Description;
        var results = new Dictionary<string, object> { ["checkpoint"] = path, ["dataset"] = description, ["test_points"] = test.Count, ["precision"] = mixed ? "bfloat16" : "float32" };
        var lines = new List<string> { $"{path}: {description}" };
        string Error(double se) => draws > 1 ? string.Create(CultureInfo.InvariantCulture, $" ± {se:F3} (standard error over {draws} draws)") : "";
        if (estimator is null)
        {
            var bound = new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.Elbo, Seed = seed, Draws = draws }).EstimateWithError(model, test);
            var iwae = new MarginalLikelihoodEstimator(new() { Method = MarginalLikelihoodMethod.ImportanceWeighted, ImportanceSamples = k, MixedPrecision = mixed, Seed = seed, Draws = draws })
                .EstimateWithError(model, test);
            var activity = model.LatentActivity(test);
            results["k"] = k; results["test_bound"] = bound.Mean; results["test_iwae"] = iwae.Mean; results["active_units"] = activity.ActiveUnits;
            if (draws > 1) { results["draws"] = draws; results["test_bound_se"] = bound.StandardError; results["test_iwae_se"] = iwae.StandardError; }
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"test lower bound per datapoint ({test.Count} images): {bound.Mean:F3} nats{Error(bound.StandardError)}"));
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"test log-likelihood (importance-weighted, K = {k}{(mixed ? ", bfloat16 output multiply" : "")}): {iwae.Mean:F3} nats{Error(iwae.StandardError)}"));
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"active latent units (Burda et al.: the variance of the encoder's mean over the test images above {activity.Threshold:0.##}): {activity.ActiveUnits} of {activity.Activity.Length}"));
        }
        else
        {
            var method = estimator switch { "elbo" => MarginalLikelihoodMethod.Elbo, "iwae" => MarginalLikelihoodMethod.ImportanceWeighted, "exact" => MarginalLikelihoodMethod.Exact, _ => MarginalLikelihoodMethod.HmcMarginal };
            var estimatorObject = new MarginalLikelihoodEstimator(new MarginalLikelihoodOptions
            {
                Method = method, ImportanceSamples = k, MixedPrecision = mixed, PosteriorSamples = posteriorSamples, LeapfrogSteps = leapfrog, BurnIn = burnIn, StartCandidates = startCandidates, Seed = seed,
                Draws = draws,
            });
            var train = First(set.Train, ImageData.TrainEvaluationBinarizationSeed);
            string key = EndPoint.Key(method);
            results["estimator"] = estimator;
            foreach (var (field, value) in EndPoint.Estimate(model, train, test, [estimatorObject.Options])) results[field] = value;
            double onTrain = (double)results["train_" + key], onTest = (double)results["test_" + key];
            string detail = method switch
            {
                MarginalLikelihoodMethod.Elbo => "lower bound",
                MarginalLikelihoodMethod.ImportanceWeighted => $"importance-weighted, K = {k}{(mixed ? ", bfloat16 output multiply" : "")}",
                MarginalLikelihoodMethod.Exact => "quadrature to 0.01 nats",
                _ => $"Appendix D: {posteriorSamples} HMC posterior samples after {burnIn} burn-in transitions, {leapfrog} leapfrog steps, "
                     + (startCandidates == 0 ? "chains from one prior draw" : $"chains from the best of {startCandidates} + {startCandidates} draws"),
            };
            double Se(string set) => results.TryGetValue($"{set}_{key}_se", out var v) ? (double)v : double.NaN;
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"train ({train.Count} images) {estimator} ({detail}): {onTrain:F3} nats per datapoint{Error(Se("train"))}"));
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"test ({test.Count} images) {estimator} ({detail}): {onTest:F3} nats per datapoint{Error(Se("test"))}"));
        }
        if (a.Get(Json)) stdout.WriteLine(JsonSerializer.Serialize(results));
        else foreach (var line in lines) stdout.WriteLine(line);
        return VaeCommand.Ok;
    }
}
