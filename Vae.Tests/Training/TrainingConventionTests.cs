using Vae.Cli;

namespace Vae.Tests.Training;

/// <summary>Conventions that separate the paper's runs from Burda et al.'s as settings of <c>vae train</c>: the N(0, I)
/// prior on the weights (section 5's MAP objective; off for maximum likelihood), the minibatch order (drawn with
/// replacement, or the data's order as Burda et al.'s code), Adam's update (Kingma and Ba's, or their code's) and the
/// initialisation (the paper's N(0, 0.01²), or their code's Glorot weights and output bias at the training mean) and the
/// encoder's scale head (log σ², or their code's log σ), and wake-sleep's phase order (the paper's code moves the decoder
/// before drawing fantasies). The paper's stay the defaults; each is recorded, resumed and replayed like every other setting.</summary>
public class TrainingConventionTests
{
    static string[] Tiny(string dir, params string[] more) =>
        ["train", "--ntrain", "1000", "--latent", "3", "--hidden", "20", "--batch", "20", "--step-size", "0.1",
         "--samples", "4000", "--eval-every", "2000", "--threads", "1", "--out", dir, .. more];

    /// <summary>Each convention: the setting, the line its run records, the line the comparison run records (null: none,
    /// so that the paper's records keep their lines; every Adam run names its variant), and the setting as the resumed
    /// trainer and the run record read it.</summary>
    public static TheoryData<string[], string, string?, string> Conventions => new()
    {
        { ["--weight-prior", "off"], "weight_prior = False", "weight_prior = True", "WeightPrior=False" },
        { ["--minibatch-order", "in-order"], "minibatch_order = InOrder", null, "MinibatchOrder=InOrder" },
        { ["--optimizer", "adam", "--adam-variant", "burda-code"], "adam_variant = BurdaCode", "adam_variant = KingmaBa", "AdamVariant=BurdaCode" },
        { ["--init", "glorot-uniform"], "initialization = GlorotUniform", null, "Initialization=GlorotUniform" },
        { ["--decoder-output-bias", "training-mean-logit"], "decoder_output_bias = TrainingMeanLogit", null, "DecoderOutputBias=TrainingMeanLogit" },
        { ["--optimizer", "adam", "--encoder-scale-head", "log-standard-deviation"], "encoder_scale_head = LogStandardDeviation", null, "EncoderScaleHead=LogStandardDeviation" },
        { ["--algorithm", "wake-sleep", "--wake-sleep-order", "wake-update-first"], "wake_sleep_order = WakeUpdateFirst", null, "WakeSleepOrder=WakeUpdateFirst" },
    };

    static string Read(AevbOptions o) =>
        $"WeightPrior={o.WeightPrior} MinibatchOrder={o.MinibatchOrder} AdamVariant={o.AdamVariant} Initialization={o.Initialization} DecoderOutputBias={o.DecoderOutputBias} EncoderScaleHead={o.EncoderScaleHead} WakeSleepOrder={o.WakeSleepOrder}";

    [Theory]
    [MemberData(nameof(Conventions))]
    public void AConventionIsRecordedResumedTakesAnotherPathAndVerifyReplaysIt(string[] setting, string recorded, string? paperRecorded, string read)
    {
        string root = TestEnvironment.NewTempDirectory();
        string paper = Path.Combine(root, "paper"), other = Path.Combine(root, "other");
        // The comparison run differs in the convention alone (Adam's variant is compared with Kingma and Ba's Adam, the
        // wake-sleep order with wake-sleep's default).
        string[] baseline = setting[0] is "--optimizer" or "--algorithm" ? setting[..2] : [];
        var a = Cli.Vae.Run(Tiny(paper, baseline));
        Assert.True(a.Code == VaeCommand.Ok, a.Err);
        var b = Cli.Vae.Run(Tiny(other, setting));
        Assert.True(b.Code == VaeCommand.Ok, b.Err);
        var paperLines = File.ReadAllLines(Path.Combine(paper, "options.txt"));
        string field = recorded[..recorded.IndexOf(' ')];
        if (paperRecorded is null) Assert.DoesNotContain(paperLines, l => l.StartsWith(field + " ", StringComparison.Ordinal));
        else Assert.Contains(paperRecorded, paperLines);
        Assert.Contains(recorded, File.ReadAllLines(Path.Combine(other, "options.txt")));
        // The same seed and draws; only the convention differs, so the trajectories part.
        Assert.NotEqual(File.ReadAllText(Path.Combine(paper, "metrics.csv")), File.ReadAllText(Path.Combine(other, "metrics.csv")));
        using (var resumed = Trainer.Resume(other)) Assert.Contains(read, Read(resumed.Options));
        Assert.Contains(read, Read(RunRecord.Read(other).Options));
        var verified = Cli.Vae.Run("verify", other);
        Assert.True(verified.Code == VaeCommand.Ok, verified.Err + verified.Out);
        Assert.Contains("identical: 2 evaluations", verified.Out);
    }

    [Theory]
    [InlineData("--weight-prior", "maybe")]
    [InlineData("--minibatch-order", "shuffled")]
    [InlineData("--algorithm", "mcem", "--minibatch-order", "in-order")]
    [InlineData("--init", "xavier")]
    [InlineData("--optimizer", "adam", "--encoder-scale-head", "log-sigma")]
    [InlineData("--encoder-scale-head", "log-standard-deviation")]
    [InlineData("--algorithm", "wake-sleep", "--optimizer", "adam", "--encoder-scale-head", "log-standard-deviation")]
    [InlineData("--wake-sleep-order", "wake-update-first")]
    public void BadConventionsAreRefusedNamingTheOption(params string[] args)
    {
        var (code, _, err) = Cli.Vae.Run(Tiny(Path.Combine(TestEnvironment.NewTempDirectory(), "x"), args));
        Assert.Equal(VaeCommand.BadUsage, code);
        Assert.Contains(args[^2], err);
    }

    [Fact]
    public void MonteCarloEmRefusesAnInOrderMinibatchInTheFacade()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new McemTrainer(SmallMnist.Model, new AevbOptions { MinibatchOrder = MinibatchOrder.InOrder }));
        Assert.Contains("Order", e.Message);
    }

    [Fact]
    public void AGaussianDecoderRefusesTheOutputBiasAtTheTrainingMean()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new AevbTrainer(new VaeModelOptions { InputDimension = 6, HiddenUnits = 4, LatentDimensions = 2, Likelihood = DecoderLikelihood.Gaussian },
                                                                        new AevbOptions { DecoderOutputBias = DecoderOutputBias.TrainingMeanLogit }));
        Assert.Contains("OutputBias", e.Message);
        Assert.Contains("Bernoulli", e.Message);
    }
}
