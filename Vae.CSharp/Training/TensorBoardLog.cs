using TorchSharp;
using Vae.Core;

namespace Vae;

/// <summary>A run's TensorBoard event files (TorchSharp's summary writer) in <c>{run directory}/tensorboard</c>.</summary>
sealed class TensorBoardLog(string runDirectory, int imageHeight, int imageWidth) : IDisposable
{
    /// <summary>Prior samples drawn into each evaluation's mosaic (a fixed seed, so the pictures are comparable over time).</summary>
    const int Samples = 64;

    readonly TorchSharp.Modules.SummaryWriter _writer = torch.utils.tensorboard.SummaryWriter(Path.Combine(runDirectory, "tensorboard"), createRunName: false);

    /// <summary>Logs an evaluation at step = training samples seen: "{measure}/train", "{measure}/test",
    /// "samples_per_second", and the image "samples".</summary>
    public void Write(EvaluationResult r, string measure, double samplesPerSecond, VaeModel model)
    {
        int step = (int)Math.Min(int.MaxValue, r.SamplesSeen);
        _writer.add_scalar($"{measure}/train", (float)r.TrainBound, step);
        if (!double.IsNaN(r.TestBound)) _writer.add_scalar($"{measure}/test", (float)r.TestBound, step);
        _writer.add_scalar("samples_per_second", (float)samplesPerSecond, step);
        if (imageHeight * imageWidth != model.Config.InputDim) return;
        using var scope = torch.NewDisposeScope();
        float[] means;
        using (torch.no_grad())
        {
            var z = torch.randn([Samples, model.Config.LatentDim], dtype: model.Config.DType, generator: Torch.generator(0));
            means = VaeModelModule.decodeMean(model, z).clamp(0, 1).to_type(torch.float32).data<float>().ToArray();
        }
        var (width, height, pixels) = Vae.Core.Plots.Mosaic.layout(Samples, imageHeight, imageWidth, 8, means);
        var image = torch.tensor(pixels, [1, height, width]).to_type(torch.float32) / 255.0;
        _writer.add_img("samples", image, step, dataformats: "CHW");
    }

    public void Dispose() { }

    /// <summary>Removes from the run's event files every event logged after <paramref name="samples"/> (a resumed run's
    /// checkpoint), atomically per file, so that a lost segment's evaluations do not stand beside the resumed run's.
    /// Event files are TFRecord streams (length, its masked CRC, an Event protocol buffer, its masked CRC); kept records
    /// are copied byte for byte, and a record cut short by a crash is dropped.</summary>
    public static void CutTo(string runDirectory, long samples)
    {
        string dir = Path.Combine(runDirectory, "tensorboard");
        if (!Directory.Exists(dir)) return;
        long last = Math.Min(int.MaxValue, samples);
        foreach (string file in Directory.GetFiles(dir, "events.out.tfevents.*"))
        {
            byte[] bytes = File.ReadAllBytes(file);
            var records = Records(bytes);
            var kept = records.Where(r => r.Step <= last).ToList();
            if (kept.Count == records.Count && records.Sum(r => r.Length) == bytes.Length) continue;
            using var output = new MemoryStream();
            foreach (var r in kept) output.Write(bytes, r.Offset, r.Length);
            Vae.Core.Files.writeAtomically(file, output.ToArray());
        }
    }

    /// <summary>The whole records of an event file: where each starts, its length with framing, and its event's step.</summary>
    internal static List<(int Offset, int Length, long Step)> Records(byte[] bytes)
    {
        var records = new List<(int, int, long)>();
        int o = 0;
        while (o + 12 <= bytes.Length)
        {
            long length = BitConverter.ToInt64(bytes, o);
            if (length < 0 || length > bytes.Length - o - 16) break; // cut short
            int data = o + 12;
            records.Add((o, (int)length + 16, Step(new ReadOnlySpan<byte>(bytes, data, (int)length))));
            o = data + (int)length + 4;
        }
        return records;
    }

    // Event.step is field 2 (varint); an event without one (the file's version record) has step 0.
    static long Step(ReadOnlySpan<byte> proto)
    {
        var input = new Google.Protobuf.CodedInputStream(proto.ToArray());
        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            if (tag == 16) return input.ReadInt64();
            input.SkipLastField();
        }
        return 0;
    }
}
